"""A renewal notice's state, derived from the evidence of its deliveries.

Nothing but :func:`refresh_notices` writes a notice's ``sent_at``, ``delivered_at`` or
``missed_at``: the sweep calls it once per batch, and the ``delivery_updated`` receiver for
every receipt. Deliveries name their notice by ``reference`` (``renewals.notice:<id>``).
Each change of when a notice was given is bound in its subscription's audit chain
(``notice_evidence``; :mod:`.row_binding`), the events of a batch appended together.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from notifications.db import update_rows
from notifications.models import Delivery

from ..models import PENDING_NOTICE_STATUSES, NoticeStatus, RenewalNotice
from ..signals import notice_missed
from .audit import NewEvent, record_event, record_events
from .row_binding import binding

logger = logging.getLogger("renewals.notices")

#: Delivery statuses that mean a provider accepted the message.
_ACCEPTED = frozenset({Delivery.Status.SENT, Delivery.Status.DELIVERED, Delivery.Status.EXPIRED})


def notice_reference(notice_id: int) -> str:
    """The ``Delivery.reference`` of every delivery of a notice."""
    return f"renewals.notice:{notice_id}"


def notice_id_of(reference: str) -> int | None:
    """The notice a delivery's reference names, or ``None`` for another caller's."""
    prefix, _, pk = reference.partition(":")
    return int(pk) if prefix == "renewals.notice" and pk.isdigit() else None


def round_key(notice: RenewalNotice) -> str:
    """The dispatch key of the notice's current round: ``notice:<pk>``, then
    ``notice:<pk>:<n>`` for the n-th resend after a receipt took the evidence back."""
    base = f"notice:{notice.pk}"
    return base if notice.resends == 0 else f"{base}:{notice.resends}"


# --- evidence ---------------------------------------------------------------------------


@dataclass
class ChannelEvidence:
    """What a notice's deliveries prove, per channel.

    ``accepted`` and ``delivered``: when a provider first accepted, or a receipt first
    confirmed, the notice inside its window. ``refused``: channels whose every delivery a
    provider refused for good (an invalid number: the user cannot be reached there).
    ``taken_back``: channels whose delivery in the current round was accepted, then reported
    undelivered or failed. ``pending``: channels with a delivery queued for a retry.
    """

    strategy: str
    channels: tuple[str, ...]
    fallback_channels: tuple[str, ...]
    skipped: dict[str, str]
    accepted: dict[str, dt.datetime] = field(default_factory=dict)
    delivered: dict[str, dt.datetime] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    taken_back: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)

    def unreachable(self) -> dict[str, str]:
        """Channels the user cannot be reached on, with the reason."""
        return {**self.skipped, **self.refused}

    def reachable(self) -> list[str]:
        unreachable = self.unreachable()
        return [c for c in self.channels if c not in unreachable]

    def given_at(self, kind: str = "accepted") -> dt.datetime | None:
        """When the notice counts as given by ``kind`` ("accepted" or "delivered") evidence:
        under ``all`` every reachable channel and at least one, under ``first_success`` any;
        a fallback channel's evidence stands in for the others."""
        times = self.accepted if kind == "accepted" else self.delivered
        fallback = [times[c] for c in self.fallback_channels if c in times]
        if self.strategy == "first_success":
            return min([times[c] for c in self.channels if c in times] + fallback, default=None)
        reachable = self.reachable()
        if reachable and all(c in times for c in reachable):
            return max(times[c] for c in reachable)
        return min(fallback, default=None)


def channel_evidence(
    notice: RenewalNotice, deliveries: Iterable[dict[str, Any]]
) -> ChannelEvidence:
    """The evidence ``deliveries`` (rows of :func:`_deliveries_of`) give for ``notice``."""
    evidence = ChannelEvidence(
        strategy=notice.strategy,
        channels=tuple(notice.channels),
        fallback_channels=tuple(notice.fallback_channels),
        skipped=dict(notice.skipped),
    )
    opens, closes = notice.window_opens_at, notice.window_closes_at
    current = round_key(notice)
    refused: dict[str, list[str]] = {}
    for row in deliveries:
        channel, status, sent_at = row["channel"], row["status"], row["sent_at"]
        if status == Delivery.Status.QUEUED:
            evidence.pending.add(channel)
        elif status in _ACCEPTED and sent_at and opens <= sent_at <= closes:
            _earliest(evidence.accepted, channel, sent_at)
            if status == Delivery.Status.DELIVERED and opens <= row["delivered_at"] <= closes:
                _earliest(evidence.delivered, channel, row["delivered_at"])
        elif status in (Delivery.Status.FAILED, Delivery.Status.UNDELIVERED):
            if sent_at is None:
                refused.setdefault(channel, []).append(row["error_code"] or status)
            elif row["dispatch_key"] == current:
                evidence.taken_back.add(channel)
    for channel, codes in refused.items():
        if channel not in evidence.accepted and channel not in evidence.pending:
            evidence.refused[channel] = f"refused by the provider ({', '.join(codes)})"
    evidence.taken_back -= set(evidence.accepted) | evidence.pending
    return evidence


def _earliest(times: dict[str, dt.datetime], channel: str, at: dt.datetime) -> None:
    if channel not in times or at < times[channel]:
        times[channel] = at


def deliveries_of(notice_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The deliveries of each notice, as rows of the fields the evidence needs."""
    rows = Delivery.objects.filter(
        reference__in=[notice_reference(pk) for pk in notice_ids]
    ).values(
        "reference", "dispatch_key", "channel", "status", "sent_at", "delivered_at", "error_code"
    )
    by_notice: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        notice_id = notice_id_of(row["reference"])
        if notice_id is not None:
            by_notice.setdefault(notice_id, []).append(dict(row))
    return by_notice


# --- deriving a notice's state ------------------------------------------------------------

_deferred: ContextVar[bool] = ContextVar("renewals_refresh_deferred", default=False)


@contextmanager
def refreshes_deferred() -> Iterator[None]:
    """Within the block, delivery updates do not refresh their notice: the caller refreshes
    every notice it sent afterwards, together (the sweep does, once per batch)."""
    token = _deferred.set(True)
    try:
        yield
    finally:
        _deferred.reset(token)


def on_delivery_updated(sender: Any, delivery: Delivery, **kwargs: Any) -> None:
    """``delivery_updated`` receiver: a notice's state follows its deliveries."""
    notice_id = notice_id_of(delivery.reference)
    if notice_id is not None and not _deferred.get():
        refresh_notices([notice_id])


def refresh_notices(
    notice_ids: Sequence[int],
    *,
    now: dt.datetime | None = None,
    changes: dict[int, dict[str, Any]] | None = None,
) -> dict[int, str]:
    """Derive each notice's state from its deliveries; return the new statuses.

    Given: ``sent`` (or ``delivered``) with the time the evidence names. Accepted by every
    channel but waiting for receipts (a rule that counts only delivered notices): ``sent``
    with no ``delivered_at``. A receipt that reports undelivered or failed takes the evidence
    back, and a fresh round goes to the channels that lost it while the window is open. A user
    reachable on no channel, or a window that closed with no evidence, makes the notice
    ``missed``, with the alert. Withdrawn notices do not change. ``changes`` (by notice id)
    are applied to notices still being sent, in the same UPDATE.
    """
    if not notice_ids:
        return {}
    now = now or timezone.now()
    changes = changes or {}
    states: dict[int, str] = {}
    missed: dict[int, str] = {}
    with transaction.atomic():
        notices = list(
            RenewalNotice.objects.select_for_update()
            .filter(pk__in=notice_ids)
            .exclude(status=NoticeStatus.WITHDRAWN)
            .order_by("pk")
        )
        deliveries = deliveries_of([n.pk for n in notices])
        fields = {*_DERIVED_FIELDS, *(name for change in changes.values() for name in change)}
        changed, given = [], []
        for notice in notices:
            before = tuple(getattr(notice, name) for name in fields)
            evidence_before = _given_fields(notice)
            if notice.status == NoticeStatus.SENDING:
                for name, value in changes.get(notice.pk, {}).items():
                    setattr(notice, name, value)
            reason = _derive(notice, channel_evidence(notice, deliveries.get(notice.pk, [])), now)
            if reason:
                missed[notice.pk] = reason
            if tuple(getattr(notice, name) for name in fields) != before:
                notice.updated_at = now
                changed.append(notice)
            if _given_fields(notice) != evidence_before:
                given.append(notice)
            states[notice.pk] = notice.status
        update_rows(changed, sorted({*fields, "updated_at"}))
        _record_given(given)
    _alert(missed)
    return states


def _given_fields(notice: RenewalNotice) -> tuple[dt.datetime | None, dt.datetime | None]:
    """What the gate reads of a notice that deliveries change: when it was given."""
    return notice.sent_at, notice.delivered_at


def _record_given(notices: Sequence[RenewalNotice]) -> None:
    """Per subscription, one ``notice_evidence`` event binding its notices whose evidence
    changed (given, or taken back by a receipt), appended together."""
    by_subscription: dict[int, list[RenewalNotice]] = {}
    for notice in notices:
        by_subscription.setdefault(notice.subscription_id, []).append(notice)
    record_events(
        [
            NewEvent(
                "notice_evidence",
                subscription_id,
                data={
                    "notices": [
                        {
                            "id": notice.pk,
                            "rule": notice.rule_id,
                            "status": notice.status,
                            "sent_at": notice.sent_at,
                            "delivered_at": notice.delivered_at,
                        }
                        for notice in changed
                    ]
                },
                rows=[binding(notice) for notice in changed],
            )
            for subscription_id, changed in sorted(by_subscription.items())
        ]
    )


_DERIVED_FIELDS = (
    "status",
    "sent_at",
    "delivered_at",
    "missed_at",
    "skipped",
    "resends",
    "send_at",
    "last_error",
)


def _derive(notice: RenewalNotice, evidence: ChannelEvidence, now: dt.datetime) -> str:
    """Set ``notice``'s derived fields from ``evidence``; return why it is newly missed."""
    notice.sent_at = evidence.given_at("accepted")
    notice.delivered_at = evidence.given_at("delivered")
    notice.skipped = {**notice.skipped, **evidence.refused}
    if notice.given_at is not None:
        notice.status = NoticeStatus.DELIVERED if notice.delivered_at else NoticeStatus.SENT
        notice.missed_at = None
        return ""
    if notice.status == NoticeStatus.MISSED:
        return ""
    if now > notice.window_closes_at:
        return _missed(notice, now, "the window closed before the notice was given")
    if not evidence.reachable() and not (notice.fallback_channels and notice.fallback_at is None):
        reasons = "; ".join(f"{c}: {r}" for c, r in sorted(evidence.unreachable().items()))
        return _missed(notice, now, f"the user cannot be reached on any channel ({reasons})")
    if notice.sent_at is not None:
        notice.status = NoticeStatus.SENT  # accepted everywhere; waiting for the receipts
    elif evidence.taken_back:
        # A receipt took the evidence back: a new round sends those channels again now.
        notice.status = NoticeStatus.SENDING
        notice.resends += 1
        notice.send_at = now
    elif notice.status == NoticeStatus.SENT:
        notice.status = NoticeStatus.SENDING
    return ""


def _missed(notice: RenewalNotice, now: dt.datetime, reason: str) -> str:
    notice.status = NoticeStatus.MISSED
    notice.missed_at = now
    notice.last_error = reason
    return reason


def mark_missed(now: dt.datetime) -> list[int]:
    """Record as missed the notices whose window closed while they were still to go out
    (also those no sweep ever reached) or still waiting for a receipt; return their ids."""
    closed = RenewalNotice.objects.filter(_open_at_close(), window_closes_at__lt=now).filter(
        Q(lease_until__isnull=True) | Q(lease_until__lte=now)
    )
    reason = "the window closed before the notice was given"
    return miss(dict.fromkeys(closed.values_list("pk", flat=True), reason), now)


def _open_at_close() -> Q:
    """Notices not given: still to go out, or accepted but waiting for a delivery receipt."""
    return Q(status__in=PENDING_NOTICE_STATUSES) | Q(
        status=NoticeStatus.SENT, delivered_when="delivered", delivered_at__isnull=True
    )


def miss(reasons: dict[int, str], now: dt.datetime) -> list[int]:
    """Mark the notices of ``reasons`` that are not given missed, and alert; return those
    marked."""
    if not reasons:
        return []
    with transaction.atomic():
        notices = list(
            RenewalNotice.objects.select_for_update().filter(_open_at_close(), pk__in=reasons)
        )
        for notice in notices:
            _missed(notice, now, reasons[notice.pk])
            notice.lease_until = None
            notice.updated_at = now
        update_rows(notices, ["status", "missed_at", "last_error", "lease_until", "updated_at"])
    ids = [notice.pk for notice in notices]
    _alert({pk: reasons[pk] for pk in ids})
    return ids


def _alert(reasons: dict[int, str]) -> None:
    """The operator alert for each missed notice: an ERROR log line, an audit event and the
    ``notice_missed`` signal."""
    for notice in RenewalNotice.objects.filter(pk__in=reasons).select_related("subscription"):
        reason = reasons[notice.pk]
        logger.error(
            "Renewal notice %s (%s) of subscription %s for the renewal at %s was missed: %s",
            notice.pk,
            notice.rule_id,
            notice.subscription_id,
            notice.renewal_at.isoformat(),
            reason,
        )
        with transaction.atomic():
            record_event(
                "notice_missed",
                subscription=notice.subscription,
                data={
                    "notice": notice.pk,
                    "rule": notice.rule_id,
                    "renewal_at": notice.renewal_at,
                    "reason": reason,
                },
            )
        notice_missed.send(sender=RenewalNotice, notice=notice, reason=reason)
