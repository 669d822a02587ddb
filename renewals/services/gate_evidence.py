"""What the renewal gate read, for its audit event: the evidence behind each decision."""

from __future__ import annotations

import datetime as dt
from typing import Any

from notifications.models import Delivery

from ..models import Consent, RenewalNotice, Subscription
from .notice_state import notice_id_of, notice_reference
from .row_binding import binding


def relied_on(subscription: Subscription, renewal_at: dt.datetime) -> dict[str, Any]:
    """The evidence on file when the gate decided on the renewal at ``renewal_at``.

    The unrevoked consents (each with the terms hash it names), the hashes of the terms the
    subscription runs on and of those the renewal charges, and every notice planned for that
    renewal: its rule, window and status, when it counts as given, and the deliveries behind
    it. Each consent and notice carries the sha256 of its bound fields as the gate read them
    (:mod:`.row_binding`), so the decision can be tied to the rows verification checks.
    """
    consents = Consent.objects.filter(subscription=subscription, revoked_at__isnull=True)
    notices = list(
        RenewalNotice.objects.filter(subscription=subscription, renewal_at=renewal_at).order_by(
            "rule_id"
        )
    )
    deliveries: dict[int, list[dict[str, Any]]] = {}
    for delivery in (
        Delivery.objects.filter(reference__in=[notice_reference(n.pk) for n in notices])
        .order_by("pk")
        .values("pk", "reference", "channel", "status", "sent_at", "delivered_at")
    ):
        notice_id = notice_id_of(delivery["reference"])
        if notice_id is not None:
            deliveries.setdefault(notice_id, []).append(
                {"id": delivery["pk"]}
                | {
                    name: delivery[name]
                    for name in ("channel", "status", "sent_at", "delivered_at")
                }
            )
    return {
        "consents": [
            {"id": c.pk, "terms_hash": c.terms_hash, "sha256": binding(c)["sha256"]}
            for c in consents.order_by("pk")
        ],
        "terms_hash": subscription.terms.content_hash,
        "renewal_terms_hash": subscription.renewal_terms().content_hash,
        "notices": [
            {
                "id": notice.pk,
                "rule": notice.rule_id,
                "status": notice.status,
                "window": [notice.window_opens_at, notice.window_closes_at],
                "given_at": notice.given_at,
                "sha256": binding(notice)["sha256"],
                "deliveries": deliveries.get(notice.pk, []),
            }
            for notice in notices
        ],
    }
