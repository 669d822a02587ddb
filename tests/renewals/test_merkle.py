"""The checkpoints' Merkle trees are RFC 9162's (Certificate Transparency): the roots of its
reference test vectors, and inclusion proofs that hold exactly for the leaf they prove."""

from __future__ import annotations

import pytest

from renewals.merkle import EMPTY_ROOT, inclusion_proof, leaf_hash, root, root_from_proof

#: The leaves of the reference vectors (certificate-transparency's merkle_tree_test) and the
#: roots of their first 1..8.
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
HASHES = [leaf_hash(data) for data in LEAVES]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_reference_vectors(size: int) -> None:
    assert root(HASHES[:size]).hex() == ROOTS[size - 1]


def test_the_empty_tree_has_the_hash_of_nothing() -> None:
    assert root([]) == EMPTY_ROOT
    assert EMPTY_ROOT.hex().startswith("e3b0c442")


@pytest.mark.parametrize("size", range(1, 9))
def test_every_leaf_is_proved_and_nothing_else(size: int) -> None:
    leaves = HASHES[:size]
    for index, leaf in enumerate(leaves):
        proof = inclusion_proof(leaves, index)
        assert root_from_proof(leaf, index, size, proof) == root(leaves)
        assert root_from_proof(leaf_hash(b"other"), index, size, proof) != root(leaves)
        if proof:
            assert root_from_proof(leaf, index, size, proof[:-1]) != root(leaves)
            assert root_from_proof(leaf, index, size, [*proof, proof[0]]) is None
    with pytest.raises(IndexError):
        inclusion_proof(leaves, size)
    assert root_from_proof(leaves[0], size, size, []) is None
