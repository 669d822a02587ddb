"""Notice windows, send hours and re-planning, at the time boundaries that matter."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from renewals.models import AuditEvent, NoticeStatus, RenewalNotice
from renewals.services import choose_send_time, plan_notices

from .factories import make_subscription, make_terms

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


@freeze_time("2027-02-20 12:00:00+00:00")
def test_cn_window_closes_exactly_five_days_before_and_send_is_daytime():
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
def test_us_ca_annual_window_across_dst(renewal):
    terms = make_terms(currency="USD", interval="year", locale="en")
    subscription = make_subscription(
        terms=terms, policy="us-ca", next_renewal_at=renewal, time_zone="America/Los_Angeles"
    )

    (notice,) = plan_notices(subscription)

    assert notice.rule_id == "annual-term-renewal"
    assert renewal - notice.window_opens_at == dt.timedelta(days=45)
    assert renewal - notice.window_closes_at == dt.timedelta(days=15)
    local_send = notice.send_at.astimezone(LOS_ANGELES)
    assert 10 <= local_send.hour < 20
    assert local_send.minute == 0
    assert notice.window_closes_at - notice.send_at >= dt.timedelta(hours=24)


@freeze_time("2027-01-01 00:00:00+00:00")
def test_us_ca_needs_no_notice_for_a_monthly_plan():
    subscription = make_subscription(
        terms=make_terms(currency="USD", locale="en"),
        policy="us-ca",
        next_renewal_at=dt.datetime(2027, 2, 1, 9, tzinfo=LOS_ANGELES),
        time_zone="America/Los_Angeles",
    )
    assert plan_notices(subscription) == []


@freeze_time("2027-02-20 12:00:00+00:00")
def test_planning_twice_changes_nothing():
    subscription = make_subscription(next_renewal_at=dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC))
    first = plan_notices(subscription)
    events = AuditEvent.objects.count()
    second = plan_notices(subscription)
    assert [n.pk for n in first] == [n.pk for n in second]
    assert RenewalNotice.objects.count() == 1
    assert AuditEvent.objects.count() == events


@freeze_time("2027-02-20 12:00:00+00:00")
def test_replanning_after_the_renewal_moves():
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
    assert event.data["withdrawn"] == [old_notice.pk]

    # Moving back plans the first renewal's notice again, on the same row.
    subscription.next_renewal_at = old
    subscription.save()
    (again,) = plan_notices(subscription)
    assert again.pk == old_notice.pk
    assert again.status == NoticeStatus.PLANNED


@freeze_time("2027-02-20 12:00:00+00:00")
def test_notices_are_withdrawn_when_the_renewal_will_not_happen():
    subscription = make_subscription(next_renewal_at=dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC))
    (notice,) = plan_notices(subscription)
    subscription.auto_renew = False
    subscription.save()
    assert plan_notices(subscription) == []
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.WITHDRAWN


@freeze_time("2027-03-08 00:00:00+00:00")
def test_a_window_already_closed_is_recorded_as_missed():
    subscription = make_subscription(next_renewal_at=dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC))
    (notice,) = plan_notices(subscription)
    assert notice.status == NoticeStatus.MISSED


def test_send_time_without_room_for_retries_takes_the_earliest_daytime_hour():
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
def test_send_hours_setting_is_respected(settings, hours, expected):
    settings.RENEWALS = {"SEND_HOURS": hours}
    opens = dt.datetime(2027, 3, 3, 9, tzinfo=SHANGHAI)
    closes = dt.datetime(2027, 3, 5, 9, tzinfo=SHANGHAI)
    send = choose_send_time(opens, closes, SHANGHAI, now=opens - dt.timedelta(days=3))
    day, hour = expected
    assert send.astimezone(SHANGHAI) == dt.datetime(2027, 3, day, hour, tzinfo=SHANGHAI)


@freeze_time("2027-02-20 12:00:00+00:00")
def test_moving_to_another_time_zone_replans_the_send_hour():
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
