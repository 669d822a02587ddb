"""Notice windows, send hours and re-planning, at the time boundaries that matter."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from pytest_django import Settings

from renewals.models import AuditEvent, NoticeStatus, RenewalNotice, Subscription
from renewals.policies import get_pack
from renewals.services import choose_send_time, plan_notices, renewal_context
from renewals.services.scheduling import earliest_noticeable_renewal, notices_too_late

from .factories import make_subscription, make_terms

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


@freeze_time("2027-02-20 12:00:00+00:00")
def test_cn_window_closes_exactly_five_days_before_and_send_is_daytime() -> None:
    renewal = dt.datetime(2027, 3, 10, 9, 0, tzinfo=SHANGHAI)
    subscription = make_subscription(next_renewal_at=renewal, time_zone="Asia/Shanghai")

    (notice,) = plan_notices(subscription)

    assert notice.rule_id == "renewal-reminder"
    assert renewal - notice.window_closes_at == dt.timedelta(hours=5 * 24)
    assert notice.window_closes_at == dt.datetime(2027, 3, 5, 9, 0, tzinfo=SHANGHAI)
    local_send = notice.send_at.astimezone(SHANGHAI)
    assert 10 <= local_send.hour < 20
    # The latest daytime hour that still leaves 24 h for retries before the window closes.
    assert local_send == dt.datetime(2027, 3, 3, 19, 0, tzinfo=SHANGHAI)
    assert notice.window_opens_at <= notice.send_at <= notice.window_closes_at
    assert sorted(notice.channels) == ["push", "sms"]


@freeze_time("2027-01-01 00:00:00+00:00")
@pytest.mark.parametrize(
    "renewal",
    [
        # The window opens in PST and closes in PDT (DST starts 2027-03-14).
        dt.datetime(2027, 4, 1, 9, 0, tzinfo=LOS_ANGELES),
        # The whole window crosses the change and closes the day after it.
        dt.datetime(2027, 3, 30, 9, 0, tzinfo=LOS_ANGELES),
        # The window closes before the change, the renewal is after it.
        dt.datetime(2027, 3, 20, 9, 0, tzinfo=LOS_ANGELES),
    ],
)
def test_us_ca_annual_window_across_dst(renewal: dt.datetime) -> None:
    terms = make_terms(currency="USD", interval="year", locale="en")
    subscription = make_subscription(
        terms=terms, policy="us-ca", next_renewal_at=renewal, time_zone="America/Los_Angeles"
    )

    (notice,) = plan_notices(subscription)

    # Calendar days in Los Angeles: from the start of the 45th day before to the end of the
    # 15th day before, whatever the hour of the renewal and the daylight-saving change.
    assert notice.rule_id == "annual-term-renewal"
    day = renewal.date()
    assert notice.window_opens_at == dt.datetime.combine(
        day - dt.timedelta(days=45), dt.time(), tzinfo=LOS_ANGELES
    )
    assert notice.window_closes_at == dt.datetime.combine(
        day - dt.timedelta(days=14), dt.time(), tzinfo=LOS_ANGELES
    ) - dt.timedelta(microseconds=1)
    local_send = notice.send_at.astimezone(LOS_ANGELES)
    assert 10 <= local_send.hour < 20
    assert local_send.minute == 0
    assert notice.window_closes_at - notice.send_at >= dt.timedelta(hours=24)


@freeze_time("2027-01-01 00:00:00+00:00")
def test_us_ca_needs_no_notice_for_a_monthly_plan() -> None:
    subscription = make_subscription(
        terms=make_terms(currency="USD", locale="en"),
        policy="us-ca",
        next_renewal_at=dt.datetime(2027, 2, 1, 9, tzinfo=LOS_ANGELES),
        time_zone="America/Los_Angeles",
    )
    assert plan_notices(subscription) == []


@freeze_time("2027-02-20 12:00:00+00:00")
def test_planning_twice_changes_nothing() -> None:
    subscription = make_subscription(next_renewal_at=dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC))
    first = plan_notices(subscription)
    events = AuditEvent.objects.count()
    second = plan_notices(subscription)
    assert [n.pk for n in first] == [n.pk for n in second]
    assert RenewalNotice.objects.count() == 1
    assert AuditEvent.objects.count() == events


@freeze_time("2027-02-20 12:00:00+00:00")
def test_replanning_after_the_renewal_moves() -> None:
    old = dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC)
    new = dt.datetime(2027, 3, 17, 1, tzinfo=dt.UTC)
    subscription = make_subscription(next_renewal_at=old)
    (old_notice,) = plan_notices(subscription)

    subscription.next_renewal_at = new
    subscription.save()
    (new_notice,) = plan_notices(subscription)

    old_notice.refresh_from_db()
    assert old_notice.status == NoticeStatus.WITHDRAWN
    assert new_notice.pk != old_notice.pk
    assert new_notice.renewal_at == new
    assert new_notice.window_closes_at == new - dt.timedelta(days=5)
    assert new_notice.status == NoticeStatus.PLANNED
    event = AuditEvent.objects.filter(kind="notices_planned").last()
    assert event is not None
    assert event.data["withdrawn"] == [old_notice.pk]

    # Moving back plans the first renewal's notice again, on the same row.
    subscription.next_renewal_at = old
    subscription.save()
    (again,) = plan_notices(subscription)
    assert again.pk == old_notice.pk
    assert again.status == NoticeStatus.PLANNED


@freeze_time("2027-02-20 12:00:00+00:00")
def test_notices_are_withdrawn_when_the_renewal_will_not_happen() -> None:
    subscription = make_subscription(next_renewal_at=dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC))
    (notice,) = plan_notices(subscription)
    subscription.auto_renew = False
    subscription.save()
    assert plan_notices(subscription) == []
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.WITHDRAWN


@freeze_time("2027-03-08 00:00:00+00:00")
def test_a_window_already_closed_is_recorded_as_missed() -> None:
    subscription = make_subscription(next_renewal_at=dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC))
    (notice,) = plan_notices(subscription)
    assert notice.status == NoticeStatus.MISSED


def test_send_time_without_room_for_retries_takes_the_earliest_daytime_hour() -> None:
    opens = dt.datetime(2027, 3, 3, 9, tzinfo=SHANGHAI)
    closes = dt.datetime(2027, 3, 5, 9, tzinfo=SHANGHAI)
    now = dt.datetime(2027, 3, 4, 21, 30, tzinfo=SHANGHAI)  # at night, 11.5 h before it closes
    # The retry margin no longer fits; no daytime hour is left before it closes: send now.
    assert choose_send_time(opens, closes, SHANGHAI, now=now) == now
    now = dt.datetime(2027, 3, 4, 7, 15, tzinfo=SHANGHAI)
    assert choose_send_time(opens, closes, SHANGHAI, now=now) == dt.datetime(
        2027, 3, 4, 10, tzinfo=SHANGHAI
    )


@pytest.mark.parametrize(
    ("hours", "expected"),
    [((10, 20), (3, 19)), ((8, 22), (4, 9)), ((12, 13), (3, 12)), ((0, 9), (4, 8))],
)
def test_send_hours_setting_is_respected(
    settings: Settings, hours: tuple[int, int], expected: tuple[int, int]
) -> None:
    settings.RENEWALS = {"SEND_HOURS": hours}
    opens = dt.datetime(2027, 3, 3, 9, tzinfo=SHANGHAI)
    closes = dt.datetime(2027, 3, 5, 9, tzinfo=SHANGHAI)
    send = choose_send_time(opens, closes, SHANGHAI, now=opens - dt.timedelta(days=3))
    day, hour = expected
    assert send.astimezone(SHANGHAI) == dt.datetime(2027, 3, day, hour, tzinfo=SHANGHAI)


@freeze_time("2027-02-20 12:00:00+00:00")
def test_moving_to_another_time_zone_replans_the_send_hour() -> None:
    subscription = make_subscription(
        next_renewal_at=dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC), time_zone="Asia/Shanghai"
    )
    (before,) = plan_notices(subscription)
    assert before.send_at.astimezone(SHANGHAI).hour == 19

    subscription.time_zone = "America/Los_Angeles"
    subscription.save()
    (after,) = plan_notices(subscription)

    assert after.pk == before.pk
    assert after.time_zone == "America/Los_Angeles"
    assert 10 <= after.send_at.astimezone(LOS_ANGELES).hour < 20
    assert plan_notices(subscription)[0].send_at == after.send_at  # and stays put


# --- calendar days, a new price, renewals too soon for their notices ------------------------------

#: A yearly us-ca renewal at 00:30 on 2027-03-20 in Los Angeles: its annual notice may go out
#: from the start of 2027-02-03 to the end of 2027-03-05, local time.
CA_RENEWAL = dt.datetime(2027, 3, 20, 0, 30, tzinfo=LOS_ANGELES)
CA_CLOSES = dt.datetime(2027, 3, 6, tzinfo=LOS_ANGELES) - dt.timedelta(microseconds=1)


def california(**fields: Any) -> Subscription:
    terms = make_terms(currency="USD", interval="year", locale="en")
    return make_subscription(
        terms=terms,
        policy="us-ca",
        next_renewal_at=CA_RENEWAL,
        time_zone="America/Los_Angeles",
        **fields,
    )


@pytest.mark.parametrize(
    ("now", "status"),
    [(CA_CLOSES, NoticeStatus.PLANNED), (CA_CLOSES + dt.timedelta(microseconds=1), "missed")],
)
def test_a_calendar_window_is_open_to_the_last_instant_of_its_last_day(
    now: dt.datetime, status: str
) -> None:
    with freeze_time(now):
        (notice,) = plan_notices(california())
    assert notice.window_closes_at == CA_CLOSES
    assert notice.status == status


@freeze_time("2027-01-01 00:00:00+00:00")
def test_a_user_who_moves_gets_the_calendar_window_of_the_new_zone() -> None:
    subscription = california()
    plan_notices(subscription)
    Subscription.objects.filter(pk=subscription.pk).update(time_zone="America/New_York")
    (notice,) = plan_notices(subscription)
    new_york = ZoneInfo("America/New_York")
    # The renewal is at 03:30 on 03-20 in New York: the same calendar days, New York's.
    assert notice.window_opens_at == dt.datetime(2027, 2, 3, tzinfo=new_york)
    assert notice.window_closes_at == dt.datetime(2027, 3, 6, tzinfo=new_york) - dt.timedelta(
        microseconds=1
    )


@pytest.mark.parametrize(
    ("amount", "currency", "change", "increase"),
    [
        ("25.00", "CNY", False, False),
        ("30.00", "CNY", True, True),
        ("20.00", "CNY", True, False),
        ("25.00", "HKD", True, True),
        ("20.00", "HKD", True, True),
    ],
)
def test_the_renewal_context_tells_a_price_change_from_an_increase(
    amount: str, currency: str, change: bool, increase: bool
) -> None:
    subscription = make_subscription(upcoming_terms=make_terms(amount=amount, currency=currency))
    context = renewal_context(subscription, CA_RENEWAL)
    assert (context.price_change, context.price_increase) == (change, increase)


def test_notices_too_late_keep_the_retry_margin(settings: Settings) -> None:
    rules = get_pack("cn").notices[:1]  # the reminder
    renewal = dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC)
    due_by = renewal - dt.timedelta(days=5)
    second = dt.timedelta(seconds=1)
    margin = dt.timedelta(hours=24)  # RETRY_MARGIN_HOURS
    assert notices_too_late(rules, renewal, SHANGHAI, now=due_by - margin) == ()
    assert notices_too_late(rules, renewal, SHANGHAI, now=due_by - margin + second) == rules
    settings.RENEWALS = {**settings.RENEWALS, "RETRY_MARGIN_HOURS": 0}
    assert notices_too_late(rules, renewal, SHANGHAI, now=due_by) == ()
    assert notices_too_late(rules, renewal, SHANGHAI, now=due_by + second) == rules


def test_the_earliest_noticeable_renewal_counts_calendar_days_across_daylight_saving() -> None:
    """A us-ca renewal deferred from 00:30 on 2027-11-01 local: 15 x 24 hours plus the
    24-hour margin later is 23:30 on 11-16, after the clocks went back, whose 15th day
    before has already ended by then; the start of 11-17 is the earliest it can be."""
    rules = get_pack("us-ca").notices_for(renewal_context(california(), CA_RENEWAL))
    now = dt.datetime(2027, 11, 1, 0, 30, tzinfo=LOS_ANGELES)
    deferred = earliest_noticeable_renewal(rules, LOS_ANGELES, now=now)
    assert deferred == dt.datetime(2027, 11, 17, tzinfo=LOS_ANGELES)
    assert notices_too_late(rules, deferred, LOS_ANGELES, now=now) == ()
    assert earliest_noticeable_renewal((), LOS_ANGELES, now=now) == now + dt.timedelta(hours=24)
