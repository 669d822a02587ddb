"""Append to the audit log, checkpoint it, and verify it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..canonical import canonical_json
from ..models import AuditCheckpoint, AuditEvent, Subscription
from ..models.audit import GENESIS

SYSTEM_CHAIN = "system"


def chain_of(subscription: Subscription | None) -> str:
    return f"subscription:{subscription.pk}" if subscription is not None else SYSTEM_CHAIN


def actor_label(actor: Any) -> str:
    """``user:42`` for a user, the string itself for a string, ``system`` for ``None``."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return f"user:{actor.pk}"


def record_event(
    kind: str,
    *,
    subscription: Subscription | None = None,
    actor: Any = None,
    data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> AuditEvent:
    """Append one event to the subscription's chain (or the system chain).

    Writers of one chain take a lock on that chain alone (a PostgreSQL transaction-level
    advisory lock keyed by the chain), held until their transaction ends, so the chain never
    forks and writers of other chains never wait. SQLite serializes all writers anyway. The
    unique (chain, sequence) constraint makes any other interleaving fail loudly, not fork.
    """
    chain = chain_of(subscription)
    # Stored as it will read back (Decimals and datetimes as strings), so the hash holds.
    stored_data = json.loads(canonical_json(data or {}))
    # No savepoint: a failure here fails the caller's whole transaction, as it must.
    with transaction.atomic(savepoint=False):
        _lock_chain(chain)
        head = (
            AuditEvent.objects.filter(chain=chain)
            .order_by("-sequence")
            .values_list("sequence", "hash")
            .first()
        )
        sequence, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS)
        event = AuditEvent(
            chain=chain,
            sequence=sequence,
            kind=kind,
            subscription=subscription,
            actor=actor_label(actor),
            data=stored_data,
            occurred_at=at or timezone.now(),
            prev_hash=prev_hash,
        )
        event.save()
    return event


def _lock_chain(chain: str) -> None:
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        key = int.from_bytes(hashlib.sha256(chain.encode()).digest()[:8], "big", signed=True)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def create_checkpoint() -> AuditCheckpoint:
    """Commit to the head of every chain, so a deleted tail or chain is detected."""
    with transaction.atomic():
        last = AuditCheckpoint.objects.select_for_update().order_by("-sequence").first()
        checkpoint = AuditCheckpoint(
            sequence=(last.sequence + 1) if last else 1,
            created_at=timezone.now(),
            heads={chain: [sequence, digest] for chain, sequence, digest in _chain_heads()},
            prev_hash=last.hash if last else GENESIS,
        )
        checkpoint.save()
    return checkpoint


def _chain_heads() -> Iterator[tuple[str, int, str]]:
    """(chain, sequence, hash) of the newest event of every chain."""
    newest_first = AuditEvent.objects.order_by("chain", "-sequence")
    if transaction.get_connection().features.can_distinct_on_fields:
        yield from newest_first.distinct("chain").values_list("chain", "sequence", "hash")
        return
    current = None
    for chain, sequence, digest in newest_first.values_list("chain", "sequence", "hash"):
        if chain != current:
            current = chain
            yield chain, sequence, digest


@dataclass(frozen=True)
class AuditProblem:
    """The first row at which the log stops being what it was."""

    model: str  # "event" or "checkpoint"
    pk: int | None
    where: str  # e.g. "subscription:4#2"
    reason: str

    def __str__(self) -> str:
        row = f"{self.model} {self.pk}" if self.pk is not None else self.model
        return f"Audit {row} ({self.where}): {self.reason}"


@dataclass(frozen=True)
class AuditReport:
    events: int
    chains: int
    checkpoints: int
    problem: AuditProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_audit() -> AuditReport:
    """Recompute every hash and link; report the first row that does not verify."""
    counts = {"events": 0, "checkpoints": 0}
    heads: dict[str, tuple[int, str]] = {}
    problem = _first_problem(counts, heads)
    return AuditReport(counts["events"], len(heads), counts["checkpoints"], problem)


def _first_problem(
    counts: dict[str, int], heads: dict[str, tuple[int, str]]
) -> AuditProblem | None:
    # Every checkpoint promises the hash of each chain's head at its time. Collect them all
    # (deduplicated: a chain that did not move between checkpoints is one promise), so an
    # event rewritten under an old checkpoint is caught, not only under the newest.
    promised: dict[tuple[str, int], tuple[str, int]] = {}
    previous_hash = GENESIS
    for checkpoint in AuditCheckpoint.objects.order_by("sequence").iterator():
        counts["checkpoints"] += 1
        where = f"checkpoint#{checkpoint.sequence}"
        if checkpoint.sequence != counts["checkpoints"]:
            reason = "a checkpoint before it is missing"
        elif checkpoint.prev_hash != previous_hash:
            reason = "its previous-hash does not match the checkpoint before it"
        elif checkpoint.compute_hash() != checkpoint.hash:
            reason = "its content does not match its hash (the row was edited)"
        else:
            reason = _collect_promises(checkpoint, promised)
        if reason:
            return AuditProblem("checkpoint", checkpoint.pk, where, reason)
        previous_hash = checkpoint.hash

    for event in AuditEvent.objects.order_by("chain", "sequence").iterator(chunk_size=2000):
        counts["events"] += 1
        previous = heads.get(event.chain)
        promise = promised.pop((event.chain, event.sequence), None)
        if event.sequence != (previous[0] + 1 if previous else 1):
            reason = "a row before it is missing"
        elif event.prev_hash != (previous[1] if previous else GENESIS):
            reason = "its previous-hash does not match the row before it"
        elif event.compute_hash() != event.hash:
            reason = "its content does not match its hash (the row was edited)"
        elif promise is not None and promise[0] != event.hash:
            reason = f"checkpoint #{promise[1]} saw this link with another hash (rewritten)"
        else:
            heads[event.chain] = (event.sequence, event.hash)
            continue
        return AuditProblem("event", event.pk, f"{event.chain}#{event.sequence}", reason)

    if promised:
        (chain, sequence), (_digest, checkpoint_sequence) = min(promised.items())
        reason = (
            f"checkpoint #{checkpoint_sequence} saw link #{sequence}, which is gone "
            "(rows were deleted)"
        )
        return AuditProblem("event", None, chain, reason)
    return None


def _collect_promises(
    checkpoint: AuditCheckpoint, promised: dict[tuple[str, int], tuple[str, int]]
) -> str:
    """Add the checkpoint's heads to ``promised``; a reason if two checkpoints disagree."""
    for chain, (sequence, digest) in checkpoint.heads.items():
        earlier = promised.setdefault((chain, sequence), (digest, checkpoint.sequence))
        if earlier[0] != digest:
            return f"it disagrees with checkpoint #{earlier[1]} about {chain}#{sequence}"
    return ""
