"""The evidence pack of one subscription: what an auditor or a complaint handler needs."""

from __future__ import annotations

import json
from typing import Any

from django.utils import timezone

from ..canonical import canonical_json
from ..models import AuditCheckpoint, RenewalTerms, Subscription
from ..models.terms import HASHED_FIELDS
from .audit import chain_of

EVIDENCE_FORMAT = "django-renewals/evidence/1"


def _terms(terms: RenewalTerms) -> dict[str, Any]:
    return {
        "id": terms.pk,
        "content": terms.content(),
        "content_hash": terms.content_hash,
        "hash_verifies": terms.compute_hash() == terms.content_hash,
        "hashed_fields": list(HASHED_FIELDS),
    }


def evidence_pack(subscription: Subscription) -> dict[str, Any]:
    """Terms shown, consent evidence, notices and outcomes, cancellation, and the audit chain.

    Every audit entry carries its hash and the previous one, and the newest checkpoint that
    covers the chain is included, so the chain can be re-verified outside the application.
    """
    consents = list(subscription.consents.order_by("granted_at"))
    terms_ids = {subscription.terms_id, *(consent.terms_id for consent in consents)}
    events = list(subscription.audit_events.order_by("sequence"))
    chain = chain_of(subscription)
    checkpoint = (
        AuditCheckpoint.objects.filter(heads__has_key=chain).order_by("-sequence").first()
        if events
        else None
    )
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
        "terms": [_terms(t) for t in RenewalTerms.objects.filter(pk__in=terms_ids)],
        "consents": [
            {
                "id": c.pk,
                **c.evidence_content(),
                "revoked_at": c.revoked_at,
                "revoked_via": c.revoked_via,
                "revoked_by": c.revoked_by_id,
                "revoke_reason": c.revoke_reason,
                "evidence_sha256": c.evidence_hash(),
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
            }
            for n in subscription.notices.order_by("renewal_at", "rule_id")
        ],
        "cancellations": [
            e.data | {"at": e.occurred_at, "actor": e.actor}
            for e in events
            if e.kind == "auto_renewal_cancelled"
        ],
        "audit": {
            "chain": chain,
            "hash_algorithm": "sha256 over canonical JSON (sorted keys, no spaces, UTF-8)",
            "events": [{**e.content(), "hash": e.hash} for e in events],
            "checkpoint": (
                {**checkpoint.content(), "hash": checkpoint.hash, "head": checkpoint.heads[chain]}
                if checkpoint
                else None
            ),
        },
    }
    # Round-trip through canonical JSON: Decimals, datetimes and dates become plain strings.
    result: dict[str, Any] = json.loads(canonical_json(pack))
    return result
