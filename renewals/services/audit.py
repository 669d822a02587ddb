"""Append to the audit log and checkpoint it (:mod:`.audit_verification` verifies it).

Every chain keeps its newest link in an :class:`~renewals.models.AuditChainHead` row, which
writers read and update under the chain's lock. With ``RENEWALS["AUDIT_KEY"]`` every event,
head and checkpoint also gets an HMAC under the key (:mod:`renewals.audit_key`), and the
chains born under the key are counted in :class:`~renewals.models.AuditChainCount`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Model
from django.utils import timezone

from notifications.db import copy_rows, insert_rows, psycopg3, update_rows

from ..audit_key import audit_key, tag
from ..canonical import canonical_json, sha256_of
from ..merkle import heads_root
from ..models import AuditChainCount, AuditChainHead, AuditCheckpoint, AuditEvent, Subscription
from ..models.audit import CHECKPOINT_CHAIN, COUNT_SHARDS, GENESIS
from ..signals import audit_checkpoint_created
from ..types import Actor
from .row_binding import BOUND_ROWS, EvidenceRow, RowBinding, binding, owner_of

SYSTEM_CHAIN = "system"

#: Where each new checkpoint is logged (INFO), for a project to forward off the database.
logger = logging.getLogger("renewals.audit")


def chain_name(subscription_id: int | None) -> str:
    """``subscription:<id>``, or ``system`` for ``None``."""
    return f"subscription:{subscription_id}" if subscription_id is not None else SYSTEM_CHAIN


def chain_of(subscription: Subscription | None) -> str:
    return chain_name(subscription.pk if subscription is not None else None)


def actor_label(actor: Actor) -> str:
    """``user:42`` for a user, the string itself for a string, ``system`` for ``None``."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return f"user:{actor.pk}"


@dataclass(frozen=True)
class NewEvent:
    """One event for :func:`record_events`: ``rows`` are the bindings of the evidence rows
    it changed (:mod:`.row_binding`)."""

    kind: str
    subscription_id: int | None = None
    actor: str = "system"
    data: Mapping[str, Any] = field(default_factory=dict)
    at: dt.datetime | None = None
    rows: Sequence[RowBinding] = ()


def record_event(
    kind: str,
    *,
    subscription: Subscription | None = None,
    actor: Actor = None,
    data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
    evidence: Iterable[EvidenceRow] = (),
) -> AuditEvent:
    """Append one event to the subscription's chain (or the system chain), binding the
    ``evidence`` rows it created or changed, as they are now: consents and notices of this
    subscription, and terms.

    Writers of one chain take a lock on that chain alone (a PostgreSQL transaction-level
    advisory lock keyed by the chain), held until their transaction ends, so the chain never
    forks and writers of other chains never wait. SQLite serializes all writers anyway. The
    unique (chain, sequence) constraint makes any other interleaving fail loudly, not fork.
    """
    subscription_id = subscription.pk if subscription is not None else None
    rows = list(evidence)
    strangers = [row for row in rows if owner_of(row) not in (None, subscription_id)]
    if strangers:
        raise ValueError(f"{strangers[0]!r} belongs to another subscription's chain.")
    event = NewEvent(
        kind, subscription_id, actor_label(actor), data or {}, at, [binding(row) for row in rows]
    )
    (recorded,) = _append([event], returning=True)
    return recorded


def record_events(events: Sequence[NewEvent]) -> None:
    """Append ``events``, in order, to their chains: one lock statement for all the chains,
    one read of their heads, one write of the events (``COPY`` on PostgreSQL) and one of the
    heads, however many there are. For the batch paths (planning, the sweep), which change
    the evidence of many subscriptions at once."""
    _append(events, returning=False)


def _append(events: Sequence[NewEvent], *, returning: bool) -> list[AuditEvent]:
    """Append ``events``; with ``returning``, the events come back with their primary keys."""
    if not events:
        return []
    key = audit_key()
    now = timezone.now()
    # No savepoint: a failure here fails the caller's whole transaction, as it must.
    with transaction.atomic(savepoint=False):
        chains = {chain_name(event.subscription_id) for event in events}
        _lock_chains(chains)
        heads = {head.chain: head for head in AuditChainHead.objects.filter(chain__in=chains)}
        born = [_born(chain) for chain in sorted(chains - set(heads))]
        heads.update((head.chain, head) for head in born)
        links = [
            _link(event, heads[chain_name(event.subscription_id)], key, now) for event in events
        ]
        if returning or not _copies(AuditEvent):
            recorded = [AuditEvent(**fields, data=json.loads(text)) for fields, text in links]
            insert_rows(recorded)
        else:
            recorded = []
            rows = ([*(fields[name] for name in _EVENT), text] for fields, text in links)
            copy_rows(AuditEvent, [*_EVENT, "data"], rows)
        _save_heads(list(heads.values()), born, key)
    return recorded


def _born(chain: str) -> AuditChainHead:
    """The head of a chain with no link yet."""
    return AuditChainHead(chain=chain, sequence=0, hash=GENESIS)


#: The columns of an event but its data.
_EVENT = (
    "chain",
    "sequence",
    "kind",
    "subscription_id",
    "actor",
    "occurred_at",
    "prev_hash",
    "hash",
    "mac",
)


def _link(
    event: NewEvent, head: AuditChainHead, key: bytes | None, now: dt.datetime
) -> tuple[dict[str, Any], str]:
    """The event as the next link after ``head``, which moves to it: its columns but its
    data (:data:`_EVENT`), and its data as the canonical JSON it is stored as (Decimals and
    datetimes as strings), so that the hash holds when it is read back."""
    if BOUND_ROWS in event.data:
        raise ValueError(f"{BOUND_ROWS!r} is the key of an event's bound rows; name it otherwise.")
    data = {**event.data, BOUND_ROWS: event.rows} if event.rows else event.data
    fields: dict[str, Any] = {
        "chain": head.chain,
        "sequence": head.sequence + 1,
        "kind": event.kind,
        "subscription_id": event.subscription_id,
        "actor": event.actor,
        "occurred_at": event.at or now,
        "prev_hash": head.hash,
    }
    digest = sha256_of(AuditEvent.content_of(**fields, data=data))
    fields["hash"] = digest
    fields["mac"] = tag(key, "event", digest) if key is not None else ""
    if key is not None and head.keyed_from is None:
        head.keyed_from = fields["sequence"]
    head.sequence, head.hash = fields["sequence"], digest
    return fields, canonical_json(data)


def _copies(model: type[Model]) -> bool:
    """Whether rows of ``model`` can be written by ``COPY`` (PostgreSQL, psycopg 3): the
    fastest way for many rows, and for a large one (a ``plan_all`` chunk's bindings)."""
    return psycopg3(connections[router.db_for_write(model)])


def _save_heads(heads: list[AuditChainHead], born: list[AuditChainHead], key: bytes | None) -> None:
    """Write the moved heads (a keyed head written without the key loses its MAC, which
    verification reports), and count the chains born under the key."""
    for head in heads:
        head.mac = tag(key, "head", head.content()) if key is not None else ""
    moved = [head for head in heads if head.pk is not None]
    if len(born) > 1 and _copies(AuditChainHead):
        columns = ("chain", *_HEAD)
        copy_rows(AuditChainHead, columns, ([getattr(h, c) for c in columns] for h in born))
    else:
        insert_rows(born)
    update_rows(moved, _HEAD)
    if key is not None and born:
        _count_born(key, [head.chain for head in born])


_HEAD = ("sequence", "hash", "keyed_from", "mac")


def _lock_chains(chains: Iterable[str]) -> None:
    """Take the transaction-level advisory lock of each chain, in one order for every writer
    (so two batches never deadlock), on PostgreSQL."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        return
    keys = sorted({_lock_key(chain) for chain in chains})
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", [keys])


def _lock_key(chain: str) -> int:
    return int.from_bytes(hashlib.sha256(chain.encode()).digest()[:8], "big", signed=True)


# --- counting the chains born under the key ---------------------------------------------


def shard_of(chain: str) -> int:
    """The :class:`~renewals.models.AuditChainCount` shard that counts ``chain``."""
    return int.from_bytes(hashlib.sha256(chain.encode()).digest()[:2], "big") % COUNT_SHARDS


def ensure_count_shards(key: bytes) -> None:
    """Create the shards' rows, at zero, where missing (the first time the key is used)."""
    AuditChainCount.objects.bulk_create(
        [
            AuditChainCount(shard=shard, chains=0, mac=tag(key, "count", [shard, 0]))
            for shard in range(COUNT_SHARDS)
        ],
        ignore_conflicts=True,
    )


def _count_born(key: bytes, chains: list[str]) -> None:
    born = Counter(shard_of(chain) for chain in chains)
    ensure_count_shards(key)
    counts = list(
        AuditChainCount.objects.select_for_update().filter(shard__in=born).order_by("shard")
    )
    for count in counts:
        count.chains += born[count.shard]
        count.mac = tag(key, "count", count.content())
    update_rows(counts, ["chains", "mac"])


# --- checkpoints ---------------------------------------------------------------------------

_ANCHOR = re.compile(r"^(?P<sequence>\d+):(?P<hash>[0-9a-f]{64})(?::(?P<mac>[0-9a-f]{64}))?$")


@dataclass(frozen=True)
class CheckpointAnchor:
    """A checkpoint's hash kept outside the database: ``<sequence>:<hash>``, and
    ``:<mac>`` after it for a checkpoint signed with the audit key, so that a log stripped
    of its signatures no longer matches."""

    sequence: int
    hash: str
    mac: str = ""

    @classmethod
    def parse(cls, text: str) -> CheckpointAnchor:
        """Raise ``ValueError`` unless ``text`` is ``SEQUENCE:HASH[:MAC]`` (64 hex digits)."""
        match = _ANCHOR.match(text)
        if match is None:
            raise ValueError(f"{text!r}: give SEQUENCE:HASH, e.g. 12:<64 hex digits>.")
        return cls(int(match["sequence"]), match["hash"], match["mac"] or "")

    @classmethod
    def of(cls, checkpoint: AuditCheckpoint) -> CheckpointAnchor:
        return cls(checkpoint.sequence, checkpoint.hash, checkpoint.mac)

    def matches(self, checkpoint: AuditCheckpoint) -> bool:
        """Whether ``checkpoint`` is the one kept (its signature too, when it was kept)."""
        return (checkpoint.sequence, checkpoint.hash) == (self.sequence, self.hash) and (
            not self.mac or checkpoint.mac == self.mac
        )

    def __str__(self) -> str:
        return ":".join([str(self.sequence), self.hash, *([self.mac] if self.mac else [])])


def create_checkpoint() -> AuditCheckpoint:
    """Commit to the head of every chain, so a deleted tail or chain is detected.

    The checkpoint's hash covers the Merkle root of the heads (:mod:`renewals.merkle`), so an
    evidence pack proves its chain's head without naming any other. With the audit key the
    checkpoint is signed too; the first signed one marks the key's start. Once committed,
    the checkpoint is logged on ``renewals.audit`` and sent as ``audit_checkpoint_created``,
    for the project to keep its hash outside the database.
    """
    key = audit_key()
    with transaction.atomic():
        _lock_chains([CHECKPOINT_CHAIN])
        head = AuditChainHead.objects.filter(chain=CHECKPOINT_CHAIN).first()
        born = head is None
        head = head or _born(CHECKPOINT_CHAIN)
        heads: dict[str, list[int | str]] = {
            chain: [sequence, digest]
            for chain, sequence, digest in AuditChainHead.objects.exclude(
                chain=CHECKPOINT_CHAIN
            ).values_list("chain", "sequence", "hash")
        }
        checkpoint = AuditCheckpoint(
            sequence=head.sequence + 1,
            created_at=timezone.now(),
            heads=heads,
            heads_root=heads_root(heads),
            prev_hash=head.hash,
        )
        checkpoint.hash = checkpoint.compute_hash()
        if key is not None:
            ensure_count_shards(key)
            checkpoint.mac = tag(key, "checkpoint", checkpoint.hash)
            if head.keyed_from is None:
                head.keyed_from = checkpoint.sequence
        checkpoint.save()
        head.sequence, head.hash = checkpoint.sequence, checkpoint.hash
        _save_heads([head], [head] if born else [], key)
        transaction.on_commit(lambda: _announce(checkpoint), robust=True)
    return checkpoint


def _announce(checkpoint: AuditCheckpoint) -> None:
    anchor = str(CheckpointAnchor.of(checkpoint))
    logger.info(
        "Audit checkpoint #%s over %d chains: %s",
        checkpoint.sequence,
        len(checkpoint.heads),
        anchor,
        extra={"audit_checkpoint": anchor},
    )
    audit_checkpoint_created.send(sender=AuditCheckpoint, checkpoint=checkpoint, anchor=anchor)
