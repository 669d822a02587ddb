"""The notice sweep: claim due notices and hand them to ``notifications`` in batches.

The database is the source of truth. A notice due to go out (``planned``, or ``sending``
with a retry time reached) is claimed with ``select_for_update(skip_locked=True)`` and a
lease, so several workers never take the same one and a crashed worker's claim is taken over
when the lease ends. Each claimed notice is sent with the dispatch key ``notice:<pk>`` (a
fresh round after a receipt took the evidence back adds ``:<round>``, the fallback
``:fallback``), so a retried sweep never sends a channel twice.

A notice is *given* (``sent``, or ``delivered`` where its rule waits for receipts) only from
its deliveries' evidence: see :mod:`renewals.services.notice_state`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from notifications.dispatch import DispatchResult, Notification, Request, send_many
from notifications.exceptions import InvalidRecipient
from notifications.message_templates import get_template
from notifications.models import Delivery
from notifications.recipients import Recipient, get_resolver

from ..conf import renewals_settings
from ..links import cancel_url, consent_url
from ..models import PENDING_NOTICE_STATUSES, NoticeStatus, RenewalNotice
from ..notice_messages import local_time
from .notice_state import (
    ChannelEvidence,
    channel_evidence,
    deliveries_of,
    mark_missed,
    miss,
    notice_reference,
    refresh_notices,
    refreshes_deferred,
    round_key,
)

logger = logging.getLogger("renewals.notices")

#: A retry is never planned closer than this to the window's close.
_CLOSING_SLACK = dt.timedelta(minutes=5)
_MIN_RETRY = dt.timedelta(minutes=1)


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
    from the clock's time, not ``now``: a long sweep passes the time it began); rows another
    worker holds locked are skipped, and a lease that ran out (its worker crashed) is claimed
    again.
    """
    lease_until = max(now, timezone.now()) + dt.timedelta(seconds=renewals_settings.LEASE_SECONDS)
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
    """Record notices whose window closed unsent as missed, then claim and send the notices
    due at ``now`` (default: now) batch by batch (``RENEWALS["SWEEP_BATCH_SIZE"]``) until none
    is left. Each batch is leased, and its retries timed, from the clock's time when it is
    claimed, so a long sweep's later batches are not handed out already expired."""
    now = now or timezone.now()
    result = SweepResult(missed=len(mark_missed(now)))
    while ids := claim_due_notices(now=now, limit=renewals_settings.SWEEP_BATCH_SIZE):
        result.claimed += len(ids)
        _send_batch(ids, max(now, timezone.now()), result)
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
    deliveries = deliveries_of(ids)
    outcomes = [_prepare(notice, deliveries.get(notice.pk, []), now) for notice in notices]
    to_send = [outcome for outcome in outcomes if outcome.request is not None]
    with refreshes_deferred():
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
    except Exception as exc:
        # A resolver's bug fails this notice alone: retried, then missed with the alert.
        logger.exception("Resolving the recipient of notice %s failed.", notice.pk)
        outcome.error = f"{type(exc).__name__}: {exc}"
        return outcome
    # Quiet hours count in the zone the send hour was chosen in.
    recipient = replace(recipient, time_zone=subscription.zone)
    channels, key, outcome.fallback = _round(notice, channel_evidence(notice, deliveries), now)
    if channels:  # else every channel has its evidence or waits for a receipt
        url = cancel_url(notice)
        outcome.request = Request(
            recipient,
            reminder(notice, recipient, url),
            channels=channels,
            idempotency_key=key,
            strategy="first_success" if notice.strategy == "first_success" else "all",
            reference=notice_reference(notice.pk),
        )
    return outcome


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


def reminder(notice: RenewalNotice, recipient: Recipient, url: str) -> Notification:
    """The notice's message, in the template its rule names (``notice.message``): the
    renewal's terms and the price before them, its date in the notice's zone, the cancel link
    ``url`` and, where the template asks for it, the link to consent to the new terms (which
    a push then opens), in the template's locale closest to the recipient's (else the
    terms')."""
    subscription = notice.subscription
    template = get_template(notice.message)
    terms, previous = subscription.renewal_terms(), subscription.terms
    locale = template.locale_for(recipient.locale or terms.locale)
    wanted = template.fields.model_fields
    context = {
        "service_name": terms.service_name,
        "amount": f"{terms.amount:.2f}",
        "currency": terms.currency,
        "previous_amount": f"{previous.amount:.2f}",
        "previous_currency": previous.currency,
        "renewal_date": local_time(notice.renewal_at, subscription.zone, locale, "DATE_FORMAT"),
        "how_to_cancel": terms.cancellation_method,
        "cancel_url": url,
    }
    if "consent_url" in wanted:  # a request for consent: its push opens the page to give it
        context["consent_url"] = url = consent_url(subscription)
    return Notification(
        template.key,
        {name: value for name, value in context.items() if name in wanted},
        locale=locale,
        url=url,
    )


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
        result.missed += len(miss(unreachable, now))
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
    """The changes that release one notice's lease with its next send time: when quiet
    hours or the rate limit end, or after a backoff unless every channel sent to was
    accepted or is out of reach (the deliveries decide the rest). A released notice is never
    due again at once, so one sweep never takes it twice."""
    notice = outcome.notice
    dispatched = outcome.dispatched
    changes: dict[str, Any] = {"lease_until": None}
    if dispatched is not None:
        skips = _channel_skips(dispatched.skipped)
        changes["skipped"] = {**notice.skipped, **skips}
        errors = [f"{d.channel}: {d.error_code}" for d in dispatched.pending]
        changes["last_error"] = "; ".join(errors)
    if outcome.error:
        changes["last_error"] = outcome.error
    if outcome.fallback:
        changes["fallback_at"] = now
    if dispatched is not None and dispatched.deferred_until is not None:
        changes["send_at"] = dispatched.deferred_until
        changes["last_error"] = f"deferred: {dispatched.reason}"
    elif outcome.error or (
        outcome.request is not None and not _all_answered(outcome.request, dispatched)
    ):
        changes["send_at"] = _retry_at(notice, now)
    return changes


def _all_answered(request: Request, dispatched: DispatchResult | None) -> bool:
    """Every channel of ``request`` was accepted by a provider, or refused or skipped for
    good: nothing of this round is left to try."""
    if dispatched is None:
        return False
    if request.strategy == "first_success" and dispatched.accepted:
        return True
    done = {
        delivery.channel
        for delivery in dispatched.deliveries
        if delivery.status != Delivery.Status.QUEUED
    }
    return all(channel in done or channel in dispatched.skipped for channel in request.channels)


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
