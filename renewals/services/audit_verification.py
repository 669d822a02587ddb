"""Verifying the audit log: every link, head, checkpoint and signature, and every evidence
row against the audit event that last bound it.

:func:`verify_audit` reads the log in one consistent snapshot and reports the first thing
that does not verify. What each check can and cannot detect, with and without the audit key,
is in ``docs/audit.md``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q

from ..audit_key import audit_key, tag_matches
from ..canonical import sha256_of
from ..merkle import heads_root
from ..models import (
    AuditChainCount,
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    Consent,
    RenewalNotice,
    RenewalTerms,
)
from ..models.audit import CHECKPOINT_CHAIN, COUNT_SHARDS, GENESIS
from .audit import SYSTEM_CHAIN, CheckpointAnchor, shard_of
from .row_binding import BOUND_ROWS, TERMS, EvidenceRow, content_of, differing_fields

#: The system-chain event by which an upgraded database records the newest consent and
#: notice written before rows were bound: those older rows are not checked field by field.
ROW_BINDING_STARTED = "row_binding_started"

#: How many chains' evidence rows are loaded and checked together.
_ROW_BATCH = 500

_NO_KEY = "with RENEWALS['AUDIT_KEY'] (rewritten without the key, or signed with another key)"


@dataclass(frozen=True)
class AuditProblem:
    """The first row at which the log, or the evidence it binds, stops being what it was.

    ``model``: "event", "checkpoint", "head", "count", or an evidence model's label
    ("renewals.consent"); ``fields``: the evidence fields that differ from their binding.
    """

    model: str
    pk: int | None
    where: str  # e.g. "subscription:4#2"
    reason: str
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        row = f"{self.model} {self.pk}" if self.pk is not None else self.model
        return f"Audit {row} ({self.where}): {self.reason}"


@dataclass(frozen=True)
class AuditReport:
    """What :func:`verify_audit` checked, and the first problem (``None``: all verified).

    ``signed``: the log carries signatures; ``keyed``: they were checked (a key is set);
    ``key_start``: the first checkpoint signed with the key, before which links are checked
    as plain hashes. ``legacy_rows``: evidence rows from before row binding, not checked.
    """

    events: int
    chains: int
    checkpoints: int
    rows: int
    problem: AuditProblem | None
    keyed: bool = False
    signed: bool = False
    key_start: int | None = None
    legacy_rows: int = 0
    anchors: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None


class AuditBroken(Exception):
    """Carries the problem out of the verification's passes."""

    def __init__(self, problem: AuditProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def verify_audit(*, expect: Sequence[CheckpointAnchor] = ()) -> AuditReport:
    """Recompute every hash, link, head and signature, compare every evidence row with its
    binding and every checkpoint in ``expect`` with its hash kept outside; report the first
    thing that does not verify."""
    with _snapshot():
        verifier = _Verifier(audit_key())
        try:
            verifier.run(expect)
        except AuditBroken as broken:
            return verifier.report(broken.problem)
    return verifier.report(None)


@contextmanager
def _snapshot() -> Iterator[None]:
    """One read-only transaction, so a log written meanwhile is seen as of one instant (on
    PostgreSQL, REPEATABLE READ; SQLite's transactions read one snapshot anyway)."""
    fresh = not connection.in_atomic_block
    with transaction.atomic():
        if fresh and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


@dataclass
class _Verifier:
    key: bytes | None
    events: int = 0
    chains: int = 0
    checkpoints: int = 0
    anchors: int = 0
    signed: bool = False
    key_start: int | None = None
    heads: dict[str, AuditChainHead] = field(default_factory=dict)
    # (chain, sequence) -> (hash, checkpoint sequence): what the checkpoints saw.
    promised: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    # The heads the first signed checkpoint saw: a chain not signed since is still as it was.
    heads_at_key_start: set[tuple[str, int, str]] = field(default_factory=set)
    # The chains born under the key (their first link signed), for the counts.
    born_keyed: list[str] = field(default_factory=list)
    rows: _RowCheck | None = None

    def report(self, problem: AuditProblem | None) -> AuditReport:
        rows = self.rows
        return AuditReport(
            events=self.events,
            chains=self.chains,
            checkpoints=self.checkpoints,
            rows=rows.checked if rows else 0,
            problem=problem,
            keyed=self.key is not None,
            signed=self.signed,
            key_start=self.key_start,
            legacy_rows=rows.legacy if rows else 0,
            anchors=self.anchors,
        )

    def run(self, expect: Sequence[CheckpointAnchor]) -> None:
        self.rows = _RowCheck(_legacy_boundary())
        self.check_checkpoints()
        self.load_heads()
        self.check_events()
        self.check_counts()
        self.rows.check_rest()
        self.rows.check_terms()
        for anchor in expect:
            self.check_anchor(anchor)

    # --- checkpoints -----------------------------------------------------------------------

    def check_checkpoints(self) -> None:
        head = AuditChainHead.objects.filter(chain=CHECKPOINT_CHAIN).first()
        keyed_from = self.check_head_signature(head) if head is not None else None
        self.key_start = keyed_from if self.key is not None else None
        if keyed_from == 1:
            self.born_keyed.append(CHECKPOINT_CHAIN)
        previous = (0, GENESIS)
        # One at a time: a checkpoint holds every chain's head.
        for checkpoint in AuditCheckpoint.objects.order_by("sequence").iterator(chunk_size=1):
            self.checkpoints += 1
            reason = self.checkpoint_reason(checkpoint, previous, keyed_from)
            if reason:
                where = f"checkpoint#{checkpoint.sequence}"
                raise AuditBroken(AuditProblem("checkpoint", checkpoint.pk, where, reason))
            previous = (checkpoint.sequence, checkpoint.hash)
        if head is None and self.checkpoints:
            raise AuditBroken(
                AuditProblem("head", None, CHECKPOINT_CHAIN, "the checkpoints' head is gone")
            )
        if head is not None and (head.sequence, head.hash) != previous:
            raise AuditBroken(
                AuditProblem(
                    "head",
                    head.pk,
                    CHECKPOINT_CHAIN,
                    f"it names checkpoint #{head.sequence}, but the checkpoints end at "
                    f"#{previous[0]} (the newest checkpoints were deleted)",
                )
            )

    def checkpoint_reason(
        self, checkpoint: AuditCheckpoint, previous: tuple[int, str], keyed_from: int | None
    ) -> str:
        if checkpoint.sequence != previous[0] + 1:
            return "a checkpoint before it is missing"
        if checkpoint.prev_hash != previous[1]:
            return "its previous-hash does not match the checkpoint before it"
        if checkpoint.compute_hash() != checkpoint.hash:
            return "its content does not match its hash (the row was edited)"
        if checkpoint.heads_root and heads_root(checkpoint.heads) != checkpoint.heads_root:
            return "its heads do not match their Merkle root (the row was edited)"
        signed = keyed_from is not None and checkpoint.sequence >= keyed_from
        if signed and not self.tag_matches("checkpoint", checkpoint.hash, checkpoint.mac):
            return f"its MAC does not verify {_NO_KEY}"
        for chain, (sequence, digest) in checkpoint.heads.items():
            earlier = self.promised.setdefault((chain, sequence), (digest, checkpoint.sequence))
            if earlier[0] != digest:
                return f"it disagrees with checkpoint #{earlier[1]} about {chain}#{sequence}"
            if checkpoint.sequence == keyed_from:
                self.heads_at_key_start.add((chain, sequence, digest))
        return ""

    # --- heads and signatures ----------------------------------------------------------------

    def tag_matches(self, purpose: str, content: Any, mac: str) -> bool:
        """Whether ``mac`` is the key's tag of ``content`` (true without a key: unchecked)."""
        return self.key is None or tag_matches(self.key, purpose, content, mac)

    def check_head_signature(self, head: AuditChainHead) -> int | None:
        """The head's ``keyed_from`` once its MAC verifies (unchecked without a key)."""
        if head.keyed_from is None:
            return None
        self.signed = True
        if not self.tag_matches("head", head.content(), head.mac):
            raise AuditBroken(
                AuditProblem("head", head.pk, head.chain, f"its MAC does not verify {_NO_KEY}")
            )
        return head.keyed_from

    def load_heads(self) -> None:
        for head in AuditChainHead.objects.exclude(chain=CHECKPOINT_CHAIN).iterator(
            chunk_size=5000
        ):
            self.check_head_signature(head)
            unsigned = head.keyed_from is None and self.key_start is not None
            if unsigned and (head.chain, head.sequence, head.hash) not in self.heads_at_key_start:
                raise AuditBroken(
                    AuditProblem(
                        "head",
                        head.pk,
                        head.chain,
                        "it is not signed, but the key signs every chain written since "
                        f"checkpoint #{self.key_start} (written without the key, or forged)",
                    )
                )
            self.heads[head.chain] = head
            if head.keyed_from == 1:
                self.born_keyed.append(head.chain)

    def check_counts(self) -> None:
        """With the key: the chains born under it, per shard, are as many as counted."""
        if self.key is None:
            return
        counts = {count.shard: count for count in AuditChainCount.objects.all()}
        born = Counter(shard_of(chain) for chain in self.born_keyed)
        if not counts and not born and self.key_start is None:
            return  # the key has signed nothing yet
        for shard in range(COUNT_SHARDS):
            count = counts.get(shard)
            if count is None:
                raise AuditBroken(AuditProblem("count", None, f"shard {shard}", "the row is gone"))
            if not self.tag_matches("count", count.content(), count.mac):
                reason = f"its MAC does not verify {_NO_KEY}"
                raise AuditBroken(AuditProblem("count", count.pk, f"shard {shard}", reason))
            if count.chains != born[shard]:
                reason = (
                    f"it counts {count.chains} chains born under the key, but {born[shard]} "
                    "are there (chains were deleted, or their signatures stripped)"
                )
                raise AuditBroken(AuditProblem("count", count.pk, f"shard {shard}", reason))

    # --- events --------------------------------------------------------------------------------

    def check_events(self) -> None:
        assert self.rows is not None
        chain, previous = "", (0, GENESIS)
        # The system chain first: the notices plan_all bound there are checked with their
        # subscriptions' rows.
        events = AuditEvent.objects.order_by("chain", "sequence")
        for event in itertools.chain(
            events.filter(chain=SYSTEM_CHAIN).iterator(chunk_size=20),
            events.exclude(chain=SYSTEM_CHAIN).iterator(chunk_size=2000),
        ):
            if event.chain != chain:
                if chain:
                    self.end_chain(chain, previous)
                chain, previous = event.chain, (0, GENESIS)
            self.events += 1
            reason = self.event_reason(event, previous)
            if reason:
                where = f"{event.chain}#{event.sequence}"
                raise AuditBroken(AuditProblem("event", event.pk, where, reason))
            previous = (event.sequence, event.hash)
            self.rows.collect(event)
        if chain:
            self.end_chain(chain, previous)
        self.rows.check_batch()
        if self.heads:
            lost = min(self.heads.values(), key=lambda head: head.chain)
            reason = f"its head names link #{lost.sequence}, but the whole chain is gone"
            raise AuditBroken(AuditProblem("head", lost.pk, lost.chain, reason))
        if self.promised:
            (lost_chain, sequence), (_digest, checkpoint) = min(self.promised.items())
            reason = (
                f"checkpoint #{checkpoint} saw link #{sequence}, which is gone (rows were deleted)"
            )
            raise AuditBroken(AuditProblem("event", None, lost_chain, reason))

    def event_reason(self, event: AuditEvent, previous: tuple[int, str]) -> str:
        promise = self.promised.pop((event.chain, event.sequence), None)
        if event.sequence != previous[0] + 1:
            return "a row before it is missing"
        if event.prev_hash != previous[1]:
            return "its previous-hash does not match the row before it"
        if event.compute_hash() != event.hash:
            return "its content does not match its hash (the row was edited)"
        if promise is not None and promise[0] != event.hash:
            return f"checkpoint #{promise[1]} saw this link with another hash (rewritten)"
        head = self.heads.get(event.chain)
        keyed_from = head.keyed_from if head is not None else None
        signed = keyed_from is not None and event.sequence >= keyed_from
        if signed and not self.tag_matches("event", event.hash, event.mac):
            return f"its MAC does not verify {_NO_KEY}"
        return ""

    def end_chain(self, chain: str, newest: tuple[int, str]) -> None:
        """The chain's last link must be the one its head names."""
        assert self.rows is not None
        self.chains += 1
        head = self.heads.pop(chain, None)
        if head is None:
            raise AuditBroken(
                AuditProblem("head", None, chain, "the chain's head is gone (deleted)")
            )
        if (head.sequence, head.hash) != newest:
            reason = (
                f"it names link #{head.sequence}, which is gone (the chain's newest links "
                "were deleted)"
                if head.sequence > newest[0]
                else f"it names link #{head.sequence}, but the chain goes on to #{newest[0]}"
            )
            raise AuditBroken(AuditProblem("head", head.pk, chain, reason))
        self.rows.end_chain(chain)

    # --- anchors -------------------------------------------------------------------------------

    def check_anchor(self, anchor: CheckpointAnchor) -> None:
        stored = AuditCheckpoint.objects.filter(sequence=anchor.sequence).first()
        if stored is not None and anchor.matches(stored):
            self.anchors += 1
            return
        if stored is None:
            found = f"it is gone, but {anchor.hash}"
        elif stored.hash != anchor.hash:
            found = f"it has hash {stored.hash}, but {anchor.hash}"
        else:
            found = f"its MAC is {stored.mac or 'gone'}, but {anchor.mac}"
        reason = f"{found} was recorded outside (the log was rewritten)"
        where = f"checkpoint#{anchor.sequence}"
        raise AuditBroken(AuditProblem("checkpoint", stored.pk if stored else None, where, reason))


def _legacy_boundary() -> dict[str, int]:
    """Model label -> the newest pk written before rows were bound (none on a database
    that bound its rows from the start)."""
    marker = (
        AuditEvent.objects.filter(chain=SYSTEM_CHAIN, kind=ROW_BINDING_STARTED)
        .order_by("sequence")
        .first()
    )
    data: dict[str, Any] = marker.data if marker is not None else {}
    return {label: int(pk or 0) for label, pk in data.items()}


@dataclass(frozen=True)
class _Binding:
    """Where a row was bound: ``event`` is the event's primary key (one row's bindings are
    written in that order: each under the row's lock), ``fields`` what it bound, or ``None``
    for a batch binding kept by its digest only (:meth:`_RowCheck.fields_of` reads them)."""

    event: int
    where: str
    sha256: str
    fields: dict[str, Any] | None


class _RowCheck:
    """Evidence rows against their newest bindings, a batch of chains at a time.

    Bindings on a subscription's chain are kept for that batch only. ``plan_all`` binds the
    notices it plans on the system chain, which is read first: those are kept, by digest,
    until their rows are checked.
    """

    def __init__(self, boundary: dict[str, int]) -> None:
        self.boundary = boundary
        self.checked = 0
        self.legacy = 0
        self.bound: dict[tuple[str, int], _Binding] = {}
        self.batch_bound: dict[tuple[str, int], _Binding] = {}
        self.subscriptions: set[int] = set()
        # terms pk -> {sha256: binding}; terms never change, so every binding must match.
        self.terms: dict[int, dict[str, _Binding]] = {}

    def collect(self, event: AuditEvent) -> None:
        where = f"{event.chain}#{event.sequence}"
        for row in event.data.get(BOUND_ROWS, ()):
            key = (row["model"], int(row["pk"]))
            if key[0] == TERMS:
                binding = _Binding(event.pk, where, row["sha256"], row["fields"])
                self.terms.setdefault(key[1], {}).setdefault(binding.sha256, binding)
            elif event.chain == SYSTEM_CHAIN:
                self.batch_bound[key] = _Binding(event.pk, where, row["sha256"], None)
            else:
                self.bound[key] = _Binding(event.pk, where, row["sha256"], row["fields"])

    def end_chain(self, chain: str) -> None:
        prefix, _, pk = chain.partition(":")
        if prefix == "subscription" and pk.isdigit():
            self.subscriptions.add(int(pk))
        if len(self.subscriptions) >= _ROW_BATCH:
            self.check_batch()

    def check_batch(self) -> None:
        """Check the rows of the subscriptions collected so far, and every row bound."""
        for model in (Consent, RenewalNotice):
            label = model._meta.label_lower
            bound = [pk for bound_model, pk in self.bound if bound_model == label]
            rows = model.objects.filter(
                Q(subscription_id__in=self.subscriptions) | Q(pk__in=bound)
            ).order_by("pk")
            for row in rows:
                self.check_row(row)
        if self.bound:
            (label, pk), binding = min(self.bound.items())
            raise AuditBroken(
                AuditProblem(label, pk, binding.where, "the row it binds is gone (deleted)")
            )
        self.subscriptions.clear()

    def check_rest(self) -> None:
        """The rows of subscriptions that have no chain (``plan_all`` may have bound them;
        else they are bound nowhere), then the batch bindings whose row is gone."""
        no_chain = ~Exists(AuditEvent.objects.filter(subscription_id=OuterRef("subscription_id")))
        for model in (Consent, RenewalNotice):
            for row in model.objects.filter(no_chain).order_by("pk").iterator(chunk_size=2000):
                self.check_row(row)
        if self.batch_bound:
            (label, pk), binding = min(self.batch_bound.items())
            raise AuditBroken(
                AuditProblem(label, pk, binding.where, "the row it binds is gone (deleted)")
            )

    def check_row(self, row: EvidenceRow) -> None:
        key = (row._meta.label_lower, row.pk)
        found = [b for b in (self.bound.pop(key, None), self.batch_bound.pop(key, None)) if b]
        if found:
            self.compare(row, max(found, key=lambda binding: binding.event))
        elif row.pk <= self.boundary.get(key[0], 0):
            self.legacy += 1
        else:
            where = f"subscription:{getattr(row, 'subscription_id', '?')}"
            reason = "no audit event binds it (the row was written outside the package's services)"
            raise AuditBroken(AuditProblem(key[0], row.pk, where, reason))

    def compare(self, row: EvidenceRow, binding: _Binding) -> None:
        self.checked += 1
        current = content_of(row)
        if binding.fields is None and sha256_of(current) == binding.sha256:
            return
        differing = differing_fields(self.fields_of(row, binding), current)
        if differing:
            reason = (
                f"its {', '.join(differing)} differ{'s' if len(differing) == 1 else ''} from "
                f"what audit event {binding.where} bound (the row was edited)"
            )
            raise AuditBroken(
                AuditProblem(row._meta.label_lower, row.pk, binding.where, reason, tuple(differing))
            )

    @staticmethod
    def fields_of(row: EvidenceRow, binding: _Binding) -> dict[str, Any]:
        """The fields ``binding`` bound of ``row``, read back from its event if need be."""
        if binding.fields is not None:
            return binding.fields
        bound = AuditEvent.objects.get(pk=binding.event).data[BOUND_ROWS]
        label = row._meta.label_lower
        fields: dict[str, Any] = next(
            b["fields"] for b in bound if (b["model"], int(b["pk"])) == (label, row.pk)
        )
        return fields

    def check_terms(self) -> None:
        """Every terms row matches its content hash, and each binding of it."""
        for terms in RenewalTerms.objects.order_by("pk").iterator(chunk_size=500):
            for binding in self.terms.pop(terms.pk, {}).values():
                self.compare(terms, binding)
            if terms.compute_hash() != terms.content_hash:
                reason = "its content does not match its content hash (the row was edited)"
                raise AuditBroken(AuditProblem(TERMS, terms.pk, f"terms#{terms.pk}", reason))
        if self.terms:
            pk, bindings = min(self.terms.items())
            where = min(binding.where for binding in bindings.values())
            raise AuditBroken(AuditProblem(TERMS, pk, where, "the row it binds is gone (deleted)"))
