"""Merkle trees as RFC 9162 (Certificate Transparency 2.0, section 2.1) defines them.

A checkpoint commits to every chain's head through the root of such a tree, so one chain's
head can be proved to an auditor with the sibling hashes along its path (about log2 of the
number of chains) and nothing about any other chain.

Leaves are the canonical JSON ``[chain, sequence, hash]`` of each head, in the order of the
chain names as Python sorts them (by code point). ``leaf = SHA-256(0x00 || leaf data)``,
``node = SHA-256(0x01 || left || right)``; a level's odd last node moves up unchanged, which
gives exactly the RFC's tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from .canonical import canonical_json

#: The root of a tree with no leaves: SHA-256 of nothing.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _up(level: Sequence[bytes]) -> list[bytes]:
    """The next level: each pair hashed, an odd last node kept as it is."""
    pairs = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    return [*pairs, level[-1]] if len(level) % 2 else pairs


def root(leaves: Sequence[bytes]) -> bytes:
    """The root of the tree over ``leaves`` (leaf hashes)."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        level = _up(level)
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of ``leaves[index]``: the sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"No leaf {index} among {len(leaves)}.")
    proof = []
    level = list(leaves)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        level, index = _up(level), index // 2
    return proof


def root_from_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root that ``proof`` leads to from ``leaf`` at ``index`` in a tree of ``size``
    leaves, or ``None`` if the proof has the wrong shape (RFC 9162, 2.1.3.2)."""
    if not 0 <= index < size:
        return None
    position, last, node = index, size - 1, leaf
    for sibling in proof:
        if last == 0:
            return None
        if position % 2 == 1 or position == last:
            node = _node(sibling, node)
            while position % 2 == 0 and position != 0:
                position, last = position // 2, last // 2
        else:
            node = _node(node, sibling)
        position, last = position // 2, last // 2
    return node if last == 0 else None


# --- chain heads -------------------------------------------------------------------------


def head_leaf(chain: str, sequence: int, digest: str) -> bytes:
    """The leaf hash of one chain's head."""
    return leaf_hash(canonical_json([chain, sequence, digest]).encode())


def head_leaves(heads: Mapping[str, Sequence[int | str]]) -> tuple[list[str], list[bytes]]:
    """The chains in leaf order, and their leaf hashes (``heads``: chain -> [sequence, hash])."""
    chains = sorted(heads)
    return chains, [
        head_leaf(chain, int(heads[chain][0]), str(heads[chain][1])) for chain in chains
    ]


def heads_root(heads: Mapping[str, Sequence[int | str]]) -> str:
    """The hex root of the tree over ``heads`` (chain -> [sequence, hash])."""
    return root(head_leaves(heads)[1]).hex()
