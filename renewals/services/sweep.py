"""The notice sweep: claim due notices, hand them to ``notifications``, and derive each
notice's state from its deliveries.

The database is the source of truth. A notice due to go out (``planned``, or ``sending``
with a retry time reached) is claimed with ``select_for_update(skip_locked=True)`` and a
lease, so several workers never take the same one and a crashed worker's claim is taken over
when the lease ends. Each claimed notice is sent with the dispatch key ``notice:<pk>`` (a
fresh round after a receipt took the evidence back adds ``:<round>``, the fallback
``:fallback``), so a retried sweep never sends a channel twice.

A notice is *given* (``sent``, or ``delivered`` where its rule waits for receipts) only from
its deliveries' evidence; :func:`refresh_notices` derives it, from the sweep and from the
``delivery_updated`` receiver that every receipt reaches.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import formats, timezone, translation

from notifications.db import update_rows
from notifications.dispatch import DispatchResult, Notification, Request, send_many
from notifications.exceptions import InvalidRecipient
from notifications.models import Delivery
from notifications.recipients import Recipient, get_resolver

from ..conf import renewals_settings
from ..links import cancel_url
from ..models import PENDING_NOTICE_STATUSES, NoticeStatus, RenewalNotice
from ..notice_messages import REMINDER
from ..signals import notice_missed
from .audit import record_event

logger = logging.getLogger("renewals.notices")

#: Delivery statuses that mean a provider accepted the message.
_ACCEPTED = frozenset({Delivery.Status.SENT, Delivery.Status.DELIVERED, Delivery.Status.EXPIRED})
#: A retry is never planned closer than this to the window's close.
_CLOSING_SLACK = dt.timedelta(minutes=5)
_MIN_RETRY = dt.timedelta(minutes=1)


def notice_reference(notice_id: int) -> str:
    """The ``Delivery.reference`` of every delivery of a notice."""
    return f"renewals.notice:{notice_id}"


def notice_id_of(reference: str) -> int | None:
    """The notice a delivery's reference names, or ``None`` for another caller's."""
    prefix, _, pk = reference.partition(":")
    return int(pk) if prefix == "renewals.notice" and pk.isdigit() else None


@dataclass
class SweepResult:
    """What one :func:`send_due_notices` run did, by notice count."""

    claimed: int = 0
    sent: int = 0  # given (accepted, or delivered), or accepted and waiting for a receipt
    waiting: int = 0  # to be retried, or deferred
    missed: int = 0
    withdrawn: int = 0


# --- claiming ---------------------------------------------------------------------------


def _due(now: dt.datetime) -> Q:
    return (
        Q(status__in=PENDING_NOTICE_STATUSES, send_at__lte=now)
        & Q(window_closes_at__gte=now)
        & (Q(lease_until__isnull=True) | Q(lease_until__lte=now))
    )


def claim_due_notices(*, now: dt.datetime, limit: int) -> list[int]:
    """Claim up to ``limit`` due notices, earliest first; return their ids.

    A claim sets ``status="sending"`` and ``lease_until`` (``RENEWALS["LEASE_SECONDS"]``
    ahead); rows another worker holds locked are skipped, and a lease that ran out (its worker
    crashed) is claimed again.
    """
    lease_until = now + dt.timedelta(seconds=renewals_settings.LEASE_SECONDS)
    with transaction.atomic():
        ids = list(
            RenewalNotice.objects.filter(_due(now))
            .order_by("send_at")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            RenewalNotice.objects.filter(pk__in=ids).update(
                status=NoticeStatus.SENDING,
                lease_until=lease_until,
                attempts=F("attempts") + 1,
                updated_at=now,
            )
    return ids


# --- the sweep --------------------------------------------------------------------------


def send_due_notices(now: dt.datetime | None = None) -> SweepResult:
    """Record notices whose window closed unsent as missed, then claim and send the due ones
    batch by batch (``RENEWALS["SWEEP_BATCH_SIZE"]``) until none is due."""
    now = now or timezone.now()
    result = SweepResult(missed=len(mark_missed(now)))
    while ids := claim_due_notices(now=now, limit=renewals_settings.SWEEP_BATCH_SIZE):
        result.claimed += len(ids)
        _send_batch(ids, now, result)
    return result


@dataclass
class _Outcome:
    notice: RenewalNotice
    request: Request | None = None
    dispatched: DispatchResult | None = None
    withdrawn: bool = False
    unreachable: str = ""
    error: str = ""
    fallback: bool = False


def _send_batch(ids: Sequence[int], now: dt.datetime, result: SweepResult) -> None:
    """Send one claimed batch: one ``send_many`` call for every notice in it."""
    notices = (
        RenewalNotice.objects.filter(pk__in=ids, status=NoticeStatus.SENDING)
        .select_related("subscription__user", "subscription__terms", "subscription__upcoming_terms")
        .prefetch_related("subscription__user__notification_devices")
        .order_by("pk")
    )
    deliveries = _deliveries_of(ids)
    outcomes = [_prepare(notice, deliveries.get(notice.pk, []), now) for notice in notices]
    to_send = [outcome for outcome in outcomes if outcome.request is not None]
    with collecting_refreshes():
        dispatched = send_many([outcome.request for outcome in to_send if outcome.request])
    for outcome, answer in zip(to_send, dispatched, strict=True):
        if isinstance(answer, DispatchResult):
            outcome.dispatched = answer
        else:
            outcome.error = f"{type(answer).__name__}: {answer}"
            logger.warning("Notice %s could not be sent: %s", outcome.notice.pk, outcome.error)
    _settle(outcomes, now, result)


def _prepare(notice: RenewalNotice, deliveries: list[dict[str, Any]], now: dt.datetime) -> _Outcome:
    """What to do with one claimed notice: withdraw it (its renewal will not happen), record
    its user as unreachable, or the request that sends this round's channels."""
    subscription = notice.subscription
    outcome = _Outcome(notice)
    if not (
        subscription.is_live
        and subscription.auto_renew
        and subscription.next_renewal_at == notice.renewal_at
    ):
        outcome.withdrawn = True
        return outcome
    try:
        recipient = get_resolver()(subscription.user)
    except InvalidRecipient as exc:
        outcome.unreachable = str(exc)
        return outcome
    # Quiet hours count in the zone the send hour was chosen in.
    recipient = replace(recipient, time_zone=subscription.zone)
    channels, key, outcome.fallback = _round(notice, channel_evidence(notice, deliveries), now)
    if channels:  # else every channel has its evidence or waits for a receipt
        url = cancel_url(notice)
        outcome.request = Request(
            recipient,
            Notification(REMINDER, reminder_context(notice, recipient, url), url=url),
            channels=channels,
            idempotency_key=key,
            strategy="first_success" if notice.strategy == "first_success" else "all",
            reference=notice_reference(notice.pk),
        )
    return outcome


def round_key(notice: RenewalNotice) -> str:
    """The dispatch key of the notice's current round: ``notice:<pk>``, then
    ``notice:<pk>:<n>`` for the n-th resend after a receipt took the evidence back."""
    base = f"notice:{notice.pk}"
    return base if notice.resends == 0 else f"{base}:{notice.resends}"


def _round(
    notice: RenewalNotice, evidence: ChannelEvidence, now: dt.datetime
) -> tuple[list[str], str, bool]:
    """The channels to send now, their dispatch key, and whether they are the fallback."""
    if notice.fallback_channels and now >= _fallback_at(notice) and not evidence.given_at():
        return list(notice.fallback_channels), f"notice:{notice.pk}:fallback", True
    missing = [c for c in notice.channels if c not in evidence.accepted]
    return missing, round_key(notice), False


def _fallback_at(notice: RenewalNotice) -> dt.datetime:
    """When the fallback channels are tried (never, for a rule without them)."""
    if not notice.fallback_channels:
        return dt.datetime.max.replace(tzinfo=dt.UTC)
    return notice.window_closes_at - dt.timedelta(hours=renewals_settings.FALLBACK_HOURS)


def reminder_context(notice: RenewalNotice, recipient: Recipient, url: str) -> dict[str, str]:
    """The reminder's fields: the renewal's terms, its date in the notice's zone and the
    recipient's locale, and the cancel link."""
    terms = notice.subscription.renewal_terms()
    local = notice.renewal_at.astimezone(notice.subscription.zone)
    with translation.override(recipient.locale or terms.locale):
        renewal_date = formats.date_format(local, "DATE_FORMAT")
    return {
        "service_name": terms.service_name,
        "amount": f"{terms.amount:.2f}",
        "currency": terms.currency,
        "renewal_date": renewal_date,
        "how_to_cancel": terms.cancellation_method,
        "cancel_url": url,
    }


def _settle(outcomes: list[_Outcome], now: dt.datetime, result: SweepResult) -> None:
    """Record what the batch's dispatch said, release the leases, and derive each notice's
    state from its deliveries."""
    withdrawn = [o.notice.pk for o in outcomes if o.withdrawn]
    if withdrawn:
        RenewalNotice.objects.filter(pk__in=withdrawn, status=NoticeStatus.SENDING).update(
            status=NoticeStatus.WITHDRAWN, lease_until=None, updated_at=now
        )
        result.withdrawn += len(withdrawn)
    unreachable = {o.notice.pk: o.unreachable for o in outcomes if o.unreachable}
    if unreachable:
        result.missed += len(_miss(unreachable, now))
    released = {
        o.notice.pk: _released(o, now) for o in outcomes if not (o.withdrawn or o.unreachable)
    }
    # Released and derived in one UPDATE: no other worker sees a released notice before
    # its state is derived.
    for status in refresh_notices(list(released), now=now, changes=released).values():
        if status in (NoticeStatus.SENT, NoticeStatus.DELIVERED):
            result.sent += 1
        elif status == NoticeStatus.MISSED:
            result.missed += 1
        else:
            result.waiting += 1


def _released(outcome: _Outcome, now: dt.datetime) -> dict[str, Any]:
    """The changes that release one notice's lease with its next send time: after quiet
    hours or the rate limit, after a backoff for a retry, else unchanged (the deliveries
    decide)."""
    notice = outcome.notice
    dispatched = outcome.dispatched
    changes: dict[str, Any] = {"lease_until": None}
    if dispatched is not None:
        changes["skipped"] = {**notice.skipped, **_channel_skips(dispatched.skipped)}
        errors = [f"{d.channel}: {d.error_code}" for d in dispatched.pending]
        changes["last_error"] = "; ".join(errors)
    if outcome.error:
        changes["last_error"] = outcome.error
    if outcome.fallback:
        changes["fallback_at"] = now
    if dispatched is not None and dispatched.deferred_until is not None:
        changes["send_at"] = dispatched.deferred_until
        changes["last_error"] = f"deferred: {dispatched.reason}"
    elif outcome.error or (dispatched is not None and dispatched.pending):
        changes["send_at"] = _retry_at(notice, now)
    return changes


def _channel_skips(skipped: dict[str, str]) -> dict[str, str]:
    """Dispatch's skips that leave a whole channel unreachable (not one device passed over)."""
    return {channel: reason for channel, reason in skipped.items() if ":" not in channel}


def _retry_at(notice: RenewalNotice, now: dt.datetime) -> dt.datetime:
    """After ``RETRY_BACKOFF_SECONDS``, doubled per attempt (a day at most), but no later
    than the fallback time nor closer than a few minutes to the window's close; always
    after ``now``, so one sweep never takes a notice twice."""
    backoff = renewals_settings.RETRY_BACKOFF_SECONDS * 2 ** max(notice.attempts - 1, 0)
    at = now + dt.timedelta(seconds=min(backoff, 86_400))
    fallback = _fallback_at(notice)
    if now < fallback < at and notice.fallback_at is None:
        at = fallback
    return max(now + _MIN_RETRY, min(at, notice.window_closes_at - _CLOSING_SLACK))


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


def _deliveries_of(notice_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
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

_collecting: ContextVar[set[int] | None] = ContextVar("renewals_collecting", default=None)


@contextmanager
def collecting_refreshes() -> Iterator[set[int]]:
    """Within the block, delivery updates note their notice instead of refreshing it at
    once; the caller refreshes them together (the sweep does, once per batch)."""
    token = _collecting.set(set())
    try:
        yield _collecting.get() or set()
    finally:
        _collecting.reset(token)


def on_delivery_updated(sender: Any, delivery: Delivery, **kwargs: Any) -> None:
    """``delivery_updated`` receiver: a notice's state follows its deliveries."""
    notice_id = notice_id_of(delivery.reference)
    if notice_id is None:
        return
    pending = _collecting.get()
    if pending is not None:
        pending.add(notice_id)
    else:
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
        deliveries = _deliveries_of([n.pk for n in notices])
        fields = {*_DERIVED_FIELDS, *(name for change in changes.values() for name in change)}
        changed = []
        for notice in notices:
            before = tuple(getattr(notice, name) for name in fields)
            if notice.status == NoticeStatus.SENDING:
                for name, value in changes.get(notice.pk, {}).items():
                    setattr(notice, name, value)
            reason = _derive(notice, channel_evidence(notice, deliveries.get(notice.pk, [])), now)
            if reason:
                missed[notice.pk] = reason
            if tuple(getattr(notice, name) for name in fields) != before:
                notice.updated_at = now
                changed.append(notice)
            states[notice.pk] = notice.status
        update_rows(changed, sorted({*fields, "updated_at"}))
    _alert(missed)
    return states


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
    return _miss(dict.fromkeys(closed.values_list("pk", flat=True), reason), now)


def _open_at_close() -> Q:
    """Notices not given: still to go out, or accepted but waiting for a delivery receipt."""
    return Q(status__in=PENDING_NOTICE_STATUSES) | Q(
        status=NoticeStatus.SENT, delivered_when="delivered", delivered_at__isnull=True
    )


def _miss(reasons: dict[int, str], now: dt.datetime) -> list[int]:
    """Mark the notices of ``reasons`` that are not given missed, and alert; return those
    marked."""
    if not reasons:
        return []
    with transaction.atomic():
        ids = list(
            RenewalNotice.objects.select_for_update()
            .filter(_open_at_close(), pk__in=reasons)
            .values_list("pk", flat=True)
        )
        for pk in ids:
            RenewalNotice.objects.filter(pk=pk).update(
                status=NoticeStatus.MISSED,
                missed_at=now,
                lease_until=None,
                last_error=reasons[pk],
                updated_at=now,
            )
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
