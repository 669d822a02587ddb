"""The evidence pack of one subscription: what an auditor or a complaint handler needs."""

from __future__ import annotations

import json
from bisect import bisect_left
from typing import Any

from django.db.models import Q
from django.utils import timezone

from ..canonical import canonical_json
from ..merkle import head_leaves, inclusion_proof
from ..models import AuditCheckpoint, AuditEvent, RenewalTerms, Subscription
from ..models.terms import HASHED_FIELDS
from .audit import SYSTEM_CHAIN, chain_of
from .batch_planning import BATCH_PLANNED
from .row_binding import BOUND_ROWS, EvidenceRow, binding

EVIDENCE_FORMAT = "django-renewals/evidence/2"


def evidence_pack(subscription: Subscription) -> dict[str, Any]:
    """Terms shown, consent evidence, notices and outcomes, cancellation, and the audit chain.

    Every audit entry carries its hash and the previous one; every terms, consent and notice
    row names the audit event that last bound it and whether it still matches; and the newest
    checkpoint that covers the chain comes with the proof that it does: the chain's head, its
    place among the checkpoint's heads and the sibling hashes of its Merkle path, never
    another subscription's head. So the chain can be re-verified outside the application.
    """
    consents = list(subscription.consents.order_by("granted_at"))
    terms_ids = {subscription.terms_id, *(consent.terms_id for consent in consents)}
    if subscription.upcoming_terms_id:
        terms_ids.add(subscription.upcoming_terms_id)
    events = list(subscription.audit_events.order_by("sequence"))
    chain = chain_of(subscription)
    bound = _newest_bindings(subscription, events)
    pack = {
        "format": EVIDENCE_FORMAT,
        "exported_at": timezone.now(),
        "subscription": {
            "id": subscription.pk,
            "user": subscription.user_id,
            "policy": subscription.policy,
            "status": subscription.status,
            "auto_renew": subscription.auto_renew,
            "current_period_start": subscription.current_period_start,
            "next_renewal_at": subscription.next_renewal_at,
            "trial_ends_at": subscription.trial_ends_at,
            "time_zone": subscription.time_zone,
            "gateway": subscription.gateway,
            "gateway_subscription_id": subscription.gateway_subscription_id,
        },
        "terms": [
            {
                "id": terms.pk,
                "content": terms.content(),
                "content_hash": terms.content_hash,
                "hash_verifies": terms.compute_hash() == terms.content_hash,
                "hashed_fields": list(HASHED_FIELDS),
                "binding": _binding(terms, bound),
            }
            for terms in RenewalTerms.objects.filter(pk__in=terms_ids).order_by("pk")
        ],
        "consents": [
            {
                "id": c.pk,
                **c.evidence_content(),
                "revoked_at": c.revoked_at,
                "revoked_via": c.revoked_via,
                "revoked_by": c.revoked_by_id,
                "revoke_reason": c.revoke_reason,
                "evidence_sha256": c.evidence_hash(),
                "binding": _binding(c, bound),
            }
            for c in consents
        ],
        "notices": [
            {
                "id": n.pk,
                "rule": n.rule_id,
                "policy": n.policy,
                "renewal_at": n.renewal_at,
                "window_opens_at": n.window_opens_at,
                "window_closes_at": n.window_closes_at,
                "send_at": n.send_at,
                "channels": n.channels,
                "status": n.status,
                "attempts": n.attempts,
                "sent_at": n.sent_at,
                "delivered_at": n.delivered_at,
                "given_in_window": n.given_in_window(),
                "last_error": n.last_error,
                "binding": _binding(n, bound),
            }
            for n in subscription.notices.order_by("renewal_at", "rule_id")
        ],
        "cancellations": [
            {name: value for name, value in e.data.items() if name != BOUND_ROWS}
            | {"at": e.occurred_at, "actor": e.actor}
            for e in events
            if e.kind == "auto_renewal_cancelled"
        ],
        "audit": {
            "chain": chain,
            "hash_algorithm": "sha256 over canonical JSON (sorted keys, no spaces, UTF-8)",
            "mac_algorithm": "HMAC-SHA256 under the operator's audit key, of the hash; "
            "empty when written without a key; checked by renewals_verify_audit",
            "events": [{**e.content(), "hash": e.hash, "mac": e.mac} for e in events],
            "checkpoint": _checkpoint_proof(chain) if events else None,
        },
    }
    # Round-trip through canonical JSON: Decimals, datetimes and dates become plain strings.
    result: dict[str, Any] = json.loads(canonical_json(pack))
    return result


def _newest_bindings(
    subscription: Subscription, events: list[AuditEvent]
) -> dict[tuple[str, int], tuple[str, str]]:
    """(model, pk) -> (the event that last bound the row, the sha256 it bound): an event of
    the subscription's chain, or a ``plan_all`` run's on the system chain (named, not
    included: it binds other subscriptions' notices too)."""
    pk = subscription.pk
    batches = AuditEvent.objects.filter(chain=SYSTEM_CHAIN, kind=BATCH_PLANNED).filter(
        Q(data__after_id=None) | Q(data__after_id__lt=pk),
        Q(data__through_id=None) | Q(data__through_id__gte=pk),
    )
    bound: dict[tuple[str, int], tuple[str, str]] = {}
    for event in sorted([*batches, *events], key=lambda event: event.pk):
        for row in event.data.get(BOUND_ROWS, ()):
            if event.chain == SYSTEM_CHAIN and row["fields"].get("subscription_id") != pk:
                continue
            bound[row["model"], int(row["pk"])] = (f"{event.chain}#{event.sequence}", row["sha256"])
    return bound


def _binding(row: EvidenceRow, bound: dict[tuple[str, int], tuple[str, str]]) -> dict[str, Any]:
    """Where the row was last bound and whether it still matches (``event: None``: it was
    written before rows were bound, or by other code than the package's services)."""
    found = bound.get((row._meta.label_lower, row.pk))
    current = binding(row)["sha256"]
    if found is None:
        return {"event": None, "sha256": current, "matches": False}
    return {"event": found[0], "sha256": found[1], "matches": found[1] == current}


def _checkpoint_proof(chain: str) -> dict[str, Any] | None:
    """The newest checkpoint committing to the chain's head through a Merkle root, with the
    chain's inclusion proof (RFC 9162, 2.1.3)."""
    checkpoint = (
        AuditCheckpoint.objects.exclude(heads_root="")
        .filter(heads__has_key=chain)
        .order_by("-sequence")
        .first()
    )
    if checkpoint is None:
        return None
    chains, leaves = head_leaves(checkpoint.heads)
    index = bisect_left(chains, chain)
    return {
        **checkpoint.content(),
        "hash": checkpoint.hash,
        "mac": checkpoint.mac,
        "head": checkpoint.heads[chain],
        "proof": {
            "leaf": "SHA-256(0x00 || canonical JSON [chain, sequence, hash])",
            "node": "SHA-256(0x01 || left || right)",
            "leaf_index": index,
            "path": [sibling.hex() for sibling in inclusion_proof(leaves, index)],
        },
    }
