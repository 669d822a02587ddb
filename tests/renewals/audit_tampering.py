"""What someone with write access to the database, but not the audit key, can do to the audit
log: edit, delete and re-hash rows in SQL (``QuerySet.update``/``delete``, bypassing
``save()``), everything consistent except the MACs, which need the key."""

from __future__ import annotations

from collections.abc import Callable

from renewals.merkle import heads_root
from renewals.models import AuditChainHead, AuditCheckpoint, AuditEvent
from renewals.models.audit import CHECKPOINT_CHAIN, GENESIS


def rewrite_chain(chain: str, edit: Callable[[AuditEvent], None] = lambda event: None) -> None:
    """Apply ``edit`` to every link of ``chain``, then re-hash and re-link them all and move
    the chain's head to the new hash (its MAC stays as it was)."""
    previous = GENESIS
    events = list(AuditEvent.objects.filter(chain=chain).order_by("sequence"))
    for event in events:
        edit(event)
        event.prev_hash = previous
        event.hash = previous = event.compute_hash()
        AuditEvent.objects.filter(pk=event.pk).update(
            data=event.data, actor=event.actor, prev_hash=event.prev_hash, hash=event.hash
        )
    AuditChainHead.objects.filter(chain=chain).update(sequence=events[-1].sequence, hash=previous)


def delete_links(chain: str, *, from_sequence: int) -> None:
    """Delete the chain's links from ``from_sequence`` on, and point its head at the newest
    link left (or delete the head with the last link)."""
    AuditEvent.objects.filter(chain=chain, sequence__gte=from_sequence).delete()
    newest = AuditEvent.objects.filter(chain=chain).order_by("-sequence").first()
    heads = AuditChainHead.objects.filter(chain=chain)
    if newest is None:
        heads.delete()
    else:
        heads.update(sequence=newest.sequence, hash=newest.hash)


def delete_checkpoints(*, from_sequence: int) -> None:
    """Delete the checkpoints from ``from_sequence`` on and point their head at the one left."""
    AuditCheckpoint.objects.filter(sequence__gte=from_sequence).delete()
    newest = AuditCheckpoint.objects.order_by("-sequence").first()
    heads = AuditChainHead.objects.filter(chain=CHECKPOINT_CHAIN)
    if newest is None:
        heads.delete()
    else:
        heads.update(sequence=newest.sequence, hash=newest.hash)


def reforge_checkpoints() -> None:
    """Make every checkpoint agree with the events as they are now: each head it saw takes
    the link's current hash (a link gone is dropped), and the checkpoints are re-hashed and
    re-linked (their MACs stay as they were)."""
    current = dict(
        ((chain, sequence), digest)
        for chain, sequence, digest in AuditEvent.objects.values_list("chain", "sequence", "hash")
    )
    previous = GENESIS
    checkpoints = list(AuditCheckpoint.objects.order_by("sequence"))
    for checkpoint in checkpoints:
        checkpoint.heads = {
            chain: [sequence, current[chain, sequence]]
            for chain, (sequence, _digest) in checkpoint.heads.items()
            if (chain, sequence) in current
        }
        if checkpoint.heads_root:
            checkpoint.heads_root = heads_root(checkpoint.heads)
        checkpoint.prev_hash = previous
        checkpoint.hash = previous = checkpoint.compute_hash()
        AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(
            heads=checkpoint.heads,
            heads_root=checkpoint.heads_root,
            prev_hash=checkpoint.prev_hash,
            hash=checkpoint.hash,
        )
    if checkpoints:
        AuditChainHead.objects.filter(chain=CHECKPOINT_CHAIN).update(
            sequence=checkpoints[-1].sequence, hash=previous
        )
