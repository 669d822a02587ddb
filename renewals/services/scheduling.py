"""Planning the notices a renewal needs, at a sensible local hour inside each window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from ..conf import renewals_settings
from ..models import (
    PENDING_NOTICE_STATUSES,
    NoticeStatus,
    RenewalNotice,
    RenewalTerms,
    Subscription,
)
from ..periods import add_interval, calendar_days
from ..policies import NoticeRule, RenewalContext, get_pack
from .audit import record_event


def renewal_context(subscription: Subscription, renewal_at: dt.datetime) -> RenewalContext:
    """What the notice rules need to know about the renewal at ``renewal_at``."""
    return context_for(renewal_at, **_renewal_facts(subscription))


def required_rules(subscription: Subscription, renewal_at: dt.datetime) -> tuple[NoticeRule, ...]:
    """The notice rules of the subscription's pack that cover the renewal at ``renewal_at``
    (none while the pack is not in force): what planning plans and the gate checks."""
    return rules_for(subscription.policy, renewal_at, **_renewal_facts(subscription))


def _renewal_facts(subscription: Subscription) -> dict[str, Any]:
    return {
        "terms": subscription.terms,
        "renewal_terms": subscription.renewal_terms(),
        "trial_ends_at": subscription.trial_ends_at,
        "zone": subscription.zone,
    }


def context_for(
    renewal_at: dt.datetime,
    *,
    terms: RenewalTerms,
    renewal_terms: RenewalTerms,
    trial_ends_at: dt.datetime | None,
    zone: ZoneInfo,
) -> RenewalContext:
    """:func:`renewal_context` from plain values: the subscription's ``terms``, the terms
    the renewal is charged at, when its trial ends and its user's zone."""
    term_end = add_interval(renewal_at, renewal_terms.interval, renewal_terms.interval_count, zone)
    ends_trial = trial_ends_at is not None and renewal_at == trial_ends_at
    other_currency = renewal_terms.currency != terms.currency
    return RenewalContext(
        term_days=calendar_days(renewal_at, term_end, zone),
        ends_trial=ends_trial,
        trial_days=terms.trial_days if ends_trial else 0,
        price_change=other_currency or renewal_terms.amount != terms.amount,
        price_increase=other_currency or renewal_terms.amount > terms.amount,
    )


def rules_for(
    policy: str,
    renewal_at: dt.datetime,
    *,
    terms: RenewalTerms,
    renewal_terms: RenewalTerms,
    trial_ends_at: dt.datetime | None,
    zone: ZoneInfo,
) -> tuple[NoticeRule, ...]:
    """:func:`required_rules` from plain values (see :func:`context_for`)."""
    pack = get_pack(policy)
    if not pack.in_force_on(renewal_at.date()):
        return ()
    if not pack.notices_have_conditions:
        return pack.notices
    context = context_for(
        renewal_at,
        terms=terms,
        renewal_terms=renewal_terms,
        trial_ends_at=trial_ends_at,
        zone=zone,
    )
    return pack.notices_for(context)


def notices_too_late(
    rules: tuple[NoticeRule, ...], renewal_at: dt.datetime, zone: ZoneInfo, *, now: dt.datetime
) -> tuple[NoticeRule, ...]:
    """The ``rules`` whose notice of the renewal at ``renewal_at`` can no longer go out in
    its window with ``RENEWALS["RETRY_MARGIN_HOURS"]`` to spare after ``now``."""
    spare_until = now + dt.timedelta(hours=renewals_settings.RETRY_MARGIN_HOURS)
    return tuple(rule for rule in rules if rule.window(renewal_at, zone)[1] < spare_until)


def earliest_noticeable_renewal(
    rules: tuple[NoticeRule, ...], zone: ZoneInfo, *, now: dt.datetime
) -> dt.datetime:
    """The earliest renewal whose notices under ``rules`` can all still go out in their
    windows with ``RENEWALS["RETRY_MARGIN_HOURS"]`` to spare after ``now``: where a renewal
    that came too soon for them is deferred to."""
    after = now + dt.timedelta(hours=renewals_settings.RETRY_MARGIN_HOURS)
    return max((rule.earliest_renewal(after, zone) for rule in rules), default=after)


def _at_hour(day: dt.date, hour: int, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=zone).astimezone(dt.UTC)


def latest_daytime_at_or_before(
    instant: dt.datetime, zone: ZoneInfo, hours: tuple[int, int]
) -> dt.datetime:
    """The latest whole local hour in ``[start, end)`` at or before ``instant``."""
    start, end = hours
    local = instant.astimezone(zone)
    if start <= local.hour < end:
        return _at_hour(local.date(), local.hour, zone)
    day = local.date() if local.hour >= end else local.date() - dt.timedelta(days=1)
    return _at_hour(day, end - 1, zone)


def earliest_daytime_at_or_after(
    instant: dt.datetime, zone: ZoneInfo, hours: tuple[int, int]
) -> dt.datetime:
    """The earliest whole local hour in ``[start, end)`` at or after ``instant``."""
    start, end = hours
    local = instant.astimezone(zone)
    on_the_hour = local.minute == local.second == local.microsecond == 0
    hour = local.hour if on_the_hour else local.hour + 1
    if hour < start:
        return _at_hour(local.date(), start, zone)
    if hour < end:
        return _at_hour(local.date(), hour, zone)
    return _at_hour(local.date() + dt.timedelta(days=1), start, zone)


def choose_send_time(
    opens: dt.datetime,
    closes: dt.datetime,
    zone: ZoneInfo,
    *,
    now: dt.datetime,
    send_hours: tuple[int, int] | None = None,
    retry_margin_hours: int | None = None,
) -> dt.datetime:
    """When to send a notice whose window is ``[opens, closes]``.

    The latest daytime hour (``RENEWALS["SEND_HOURS"]`` in the user's zone) that still leaves
    ``RETRY_MARGIN_HOURS`` before the window closes: close to the renewal, so the reminder is
    useful, with room for retries. If the margin does not fit, the earliest daytime hour in
    the window; if the window has no daytime hour left, at once. ``send_hours`` and
    ``retry_margin_hours`` stand in for the settings (a batch reads them once).
    """
    hours = renewals_settings.SEND_HOURS if send_hours is None else send_hours
    if retry_margin_hours is None:
        retry_margin_hours = renewals_settings.RETRY_MARGIN_HOURS
    margin = dt.timedelta(hours=retry_margin_hours)
    earliest = max(opens, now)
    candidate = latest_daytime_at_or_before(closes - margin, zone, hours)
    if candidate >= earliest:
        return candidate
    candidate = earliest_daytime_at_or_after(earliest, zone, hours)
    return candidate if candidate <= closes else earliest


def notice_fields(
    rule: NoticeRule,
    renewal_at: dt.datetime,
    *,
    policy: str,
    time_zone: str,
    now: dt.datetime,
    send_hours: tuple[int, int] | None = None,
    retry_margin_hours: int | None = None,
) -> dict[str, Any]:
    """The fields a notice for ``rule`` before the renewal at ``renewal_at`` is planned with,
    for a user in ``time_zone`` (in which calendar days are counted) under pack ``policy``,
    planned at ``now``."""
    zone = ZoneInfo(time_zone)
    opens, closes = rule.window(renewal_at, zone)
    send_at = choose_send_time(
        opens,
        closes,
        zone,
        now=now,
        send_hours=send_hours,
        retry_margin_hours=retry_margin_hours,
    )
    return {
        "policy": policy,
        "window_opens_at": opens,
        "window_closes_at": closes,
        "send_at": send_at,
        "time_zone": time_zone,
        "channels": [str(channel) for channel in rule.channels],
        "strategy": rule.strategy,
        "fallback_channels": [str(channel) for channel in rule.fallback_channels],
        "delivered_when": rule.delivered_when,
        "message": rule.message,
        "status": NoticeStatus.MISSED if now > closes else NoticeStatus.PLANNED,
        "attempts": 0,
        "last_error": "",
    }


def needs_replanning(status: str, planned_zone: str, time_zone: str) -> bool:
    """Whether a notice that already exists for the renewal and rule is planned afresh.

    It is when the renewal came back to a time it had before (the notice was withdrawn), or
    when the user moved to another zone (the planned hour could now fall at night there).
    """
    return status == NoticeStatus.WITHDRAWN or (
        status == NoticeStatus.PLANNED and planned_zone != time_zone
    )


def plan_notices(subscription: Subscription) -> list[RenewalNotice]:
    """Make the subscription's planned notices match its next renewal; return the live ones.

    Idempotent: planning twice changes nothing. Notices for a renewal that moved or will
    no longer happen (auto-renewal off, subscription ended) are withdrawn; a notice whose
    window closed before it could be planned is recorded as missed, for the renewal gate.
    """
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        renewal_at = subscription.next_renewal_at
        will_renew = subscription.is_live and subscription.auto_renew and renewal_at is not None
        rules = required_rules(subscription, renewal_at) if renewal_at and will_renew else ()
        rule_ids = {rule.id for rule in rules}
        withdrawn = withdraw_notices(
            subscription,
            keep=lambda notice: notice.renewal_at == renewal_at and notice.rule_id in rule_ids,
        )
        notices = [_plan_one(subscription, rule) for rule in rules]
        planned = [notice for notice, created in notices if created]
        if planned or withdrawn:
            record_event(
                "notices_planned",
                subscription=subscription,
                data={
                    "renewal_at": renewal_at,
                    "planned": [
                        {"id": n.pk, "rule": n.rule_id, "send_at": n.send_at, "status": n.status}
                        for n in planned
                    ],
                    "withdrawn": withdrawn,
                },
                evidence=planned,
            )
    return [notice for notice, _created in notices]


def withdraw_notices(
    subscription: Subscription, *, keep: Callable[[RenewalNotice], bool] = lambda notice: False
) -> list[int]:
    """Withdraw the subscription's notices still to go out (except those ``keep`` accepts);
    return their ids."""
    pending = subscription.notices.filter(status__in=PENDING_NOTICE_STATUSES)
    withdrawn = [notice.pk for notice in pending if not keep(notice)]
    if withdrawn:
        RenewalNotice.objects.filter(pk__in=withdrawn).update(
            status=NoticeStatus.WITHDRAWN, lease_until=None, updated_at=timezone.now()
        )
    return withdrawn


def _plan_one(subscription: Subscription, rule: NoticeRule) -> tuple[RenewalNotice, bool]:
    """The notice for ``rule`` before the next renewal, and whether it was (re)planned now."""
    renewal_at = subscription.next_renewal_at
    assert renewal_at is not None
    fields = notice_fields(
        rule,
        renewal_at,
        policy=subscription.policy,
        time_zone=subscription.time_zone,
        now=timezone.now(),
    )
    notice, created = RenewalNotice.objects.get_or_create(
        subscription=subscription, renewal_at=renewal_at, rule_id=rule.id, defaults=fields
    )
    if not created and needs_replanning(notice.status, notice.time_zone, subscription.time_zone):
        for name, value in fields.items():
            setattr(notice, name, value)
        notice.save()
        return notice, True
    return notice, created
