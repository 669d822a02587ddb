"""The notice sweep: due notices go out once per channel, and a notice's state follows the
evidence of its deliveries."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time
from pytest_django import Settings

from notifications.backends import locmem
from notifications.messages import Message, PushMessage, Receipt, SendResult, SMSMessage
from notifications.models import Delivery, Device
from notifications.recipients import Recipient
from notifications.status import apply_receipt
from renewals import tasks
from renewals.links import cancel_url
from renewals.models import AuditEvent, NoticeStatus, RenewalNotice
from renewals.services import renewal_gate
from renewals.services.notice_state import refresh_notices
from renewals.services.sweep import SweepResult, claim_due_notices, send_due_notices
from renewals.signals import notice_missed
from renewals.types import User

from ..concurrency import run_concurrently
from .factories import PHONE, make_consented_subscription, make_terms, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reachable_users")]

SHANGHAI = ZoneInfo("Asia/Shanghai")
PLANNED_AT = dt.datetime(2027, 2, 1, tzinfo=dt.UTC)
RENEWAL = dt.datetime(2027, 3, 10, 9, tzinfo=SHANGHAI)

M = TypeVar("M", bound=Message)


def subscriber(*, phone: str | None = PHONE, device: bool = True, locale: str = "en") -> User:
    user = make_user(first_name=phone or "", last_name=locale)
    if device:
        Device.objects.create(user=user, platform="android", provider="fcm", token=f"tok-{user.pk}")
    return user


def planned(
    user: User | None = None,
    *,
    renewal: dt.datetime = RENEWAL,
    zone: str = "Asia/Shanghai",
    **fields: Any,
) -> RenewalNotice:
    """The notice planned for a consenting subscriber's renewal at ``renewal``."""
    subscription = make_consented_subscription(
        at=PLANNED_AT, user=user or subscriber(), next_renewal_at=renewal, time_zone=zone, **fields
    )
    return subscription.notices.get()


def cn_reminder_with(settings: Settings, **rule: object) -> str:
    """The code of a pack like ``cn`` whose reminder rule has ``rule``'s fields."""
    settings.RENEWALS = {
        **settings.RENEWALS,
        "POLICIES": {"cn-test": {"extends": "cn", "notices": [{"id": "renewal-reminder", **rule}]}},
    }
    return "cn-test"


def sweep_at(at: dt.datetime) -> SweepResult:
    with freeze_time(at):
        return send_due_notices()


def reload(notice: RenewalNotice) -> RenewalNotice:
    notice.refresh_from_db()
    return notice


def outbox_of(kind: type[M]) -> list[M]:
    return [message for message in locmem.outbox if isinstance(message, kind)]


# --- sending -----------------------------------------------------------------------------


def test_a_due_notice_goes_out_once_by_sms_and_push_with_the_cancel_link() -> None:
    notice = planned()
    assert sweep_at(notice.send_at - dt.timedelta(seconds=1)).claimed == 0
    assert locmem.outbox == []

    result = sweep_at(notice.send_at)

    assert (result.claimed, result.sent) == (1, 1)
    [sms], [push] = outbox_of(SMSMessage), outbox_of(PushMessage)
    with freeze_time(notice.send_at):
        link = cancel_url(notice)  # the notice's one-click link, signed as the sweep did
    assert link.startswith("https://shop.example/c/")
    assert sms.to == PHONE
    assert "Example Plus" in sms.body
    assert "25.00 CNY" in sms.body
    assert link in sms.body
    assert "March 10, 2027" in sms.body  # the renewal date in the user's zone and locale
    assert push.url == link
    notice = reload(notice)
    assert notice.status == NoticeStatus.SENT
    assert notice.sent_at == notice.send_at
    assert notice.given_in_window()
    keys = sorted(Delivery.objects.values_list("idempotency_key", flat=True))
    device = Device.objects.get()
    assert keys == [f"notice:{notice.pk}:push:{device.pk}", f"notice:{notice.pk}:sms"]
    assert set(Delivery.objects.values_list("reference", flat=True)) == {
        f"renewals.notice:{notice.pk}"
    }


def test_the_reminder_is_written_in_the_users_locale() -> None:
    notice = planned(subscriber(locale="zh-hans"))
    sweep_at(notice.send_at)
    [sms] = outbox_of(SMSMessage)
    assert "2027年3月10日" in sms.body
    assert "一键关闭" in sms.body


def test_the_date_is_written_in_the_language_of_the_text_around_it() -> None:
    notice = planned(subscriber(locale="fr"))  # no French reminder: the first one, Chinese
    sweep_at(notice.send_at)
    [sms] = outbox_of(SMSMessage)
    assert "2027年3月10日" in sms.body
    assert "mars" not in sms.body


def test_sweeping_again_sends_nothing_more() -> None:
    notice = planned()
    sweep_at(notice.send_at)
    again = sweep_at(notice.send_at + dt.timedelta(hours=1))
    assert again.claimed == 0
    assert len(locmem.outbox) == 2
    assert Delivery.objects.count() == 2


def test_the_task_returns_the_counts() -> None:
    notice = planned()
    with freeze_time(notice.send_at):
        counts = tasks.send_due_notices()
    assert counts == {"claimed": 1, "sent": 1, "waiting": 0, "missed": 0, "withdrawn": 0}


@pytest.mark.parametrize(
    ("zone", "renewal"),
    [
        # No daylight saving: the planned hour is 19:00 local.
        ("Asia/Shanghai", dt.datetime(2027, 3, 10, 9)),
        # The window is in PST, the renewal in PDT (the change is on 2027-03-14).
        ("America/Los_Angeles", dt.datetime(2027, 3, 17, 9)),
        # The reminder goes out the evening after the clocks went forward (2027-03-28).
        ("Europe/Berlin", dt.datetime(2027, 4, 3, 9)),
        # And after they went back (2027-10-31).
        ("Europe/Berlin", dt.datetime(2027, 11, 6, 1, 30)),
    ],
)
def test_notices_go_out_at_the_planned_local_hour_across_dst(
    zone: str, renewal: dt.datetime
) -> None:
    local_renewal = renewal.replace(tzinfo=ZoneInfo(zone))
    notice = planned(renewal=local_renewal, zone=zone)
    assert notice.send_at.astimezone(ZoneInfo(zone)).hour == 19

    assert sweep_at(notice.send_at - dt.timedelta(minutes=1)).claimed == 0
    assert sweep_at(notice.send_at).sent == 1

    notice = reload(notice)
    assert notice.sent_at is not None
    assert notice.sent_at.astimezone(ZoneInfo(zone)).hour == 19
    assert notice.given_in_window()


# --- claiming ----------------------------------------------------------------------------


def test_a_claimed_notice_is_not_claimed_again_until_its_lease_ends() -> None:
    notice = planned()
    assert claim_due_notices(now=notice.send_at, limit=10) == [notice.pk]
    assert claim_due_notices(now=notice.send_at, limit=10) == []
    notice = reload(notice)
    assert notice.status == NoticeStatus.SENDING
    assert notice.lease_until == notice.send_at + dt.timedelta(seconds=300)
    # The worker crashed: once the lease has run out, the next sweep takes it over.
    result = sweep_at(notice.lease_until)
    assert (result.claimed, result.sent) == (1, 1)
    assert reload(notice).attempts == 2


def test_claims_take_the_earliest_first_and_respect_the_limit() -> None:
    early = planned(renewal=RENEWAL)
    late = planned(renewal=RENEWAL + dt.timedelta(hours=1))
    now = late.send_at
    assert claim_due_notices(now=now, limit=1) == [early.pk]
    assert claim_due_notices(now=now, limit=1) == [late.pk]


@pytest.mark.django_db(transaction=True)
def test_four_sweeps_at_once_send_each_notice_once() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL's row locks")
    notices = [planned() for _ in range(12)]
    now = max(n.send_at for n in notices)
    batches_of_two = {"BASE_URL": "https://shop.example", "SWEEP_BATCH_SIZE": 2}
    with override_settings(RENEWALS=batches_of_two), freeze_time(now):
        results = run_concurrently(lambda _: send_due_notices(), threads=4)
    assert sum(r.claimed for r in results) == 12
    assert Delivery.objects.count() == 24
    assert len(locmem.outbox) == 24
    assert set(RenewalNotice.objects.values_list("status", "attempts")) == {(NoticeStatus.SENT, 1)}


# --- channels a user cannot be reached on ------------------------------------------------


def test_a_channel_without_an_address_is_skipped_and_the_other_gives_the_notice() -> None:
    notice = planned(subscriber(phone=None))
    sweep_at(notice.send_at)
    notice = reload(notice)
    assert notice.status == NoticeStatus.SENT
    assert notice.skipped == {"sms": "no phone number"}
    assert outbox_of(SMSMessage) == []
    assert len(outbox_of(PushMessage)) == 1


def test_a_user_reachable_on_no_channel_is_missed_at_once_with_an_alert(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notice = planned(subscriber(phone=None, device=False))
    heard = []
    notice_missed.connect(lambda **kw: heard.append(kw), weak=False, dispatch_uid="t")
    try:
        with caplog.at_level(logging.ERROR, logger="renewals.notices"):
            result = sweep_at(notice.send_at)
    finally:
        notice_missed.disconnect(dispatch_uid="t")
    notice = reload(notice)
    assert result.missed == 1
    assert notice.status == NoticeStatus.MISSED
    assert notice.missed_at == notice.send_at
    assert "no phone number and no active device" in notice.last_error
    assert heard[0]["notice"].pk == notice.pk
    assert f"Renewal notice {notice.pk}" in caplog.text
    event = AuditEvent.objects.get(kind="notice_missed")
    assert event.data["notice"] == notice.pk
    assert not renewal_gate(notice.subscription, notice.renewal_at).allowed


def test_a_number_the_provider_refuses_for_good_leaves_push_to_give_the_notice() -> None:
    notice = planned()
    locmem.next_results.append(SendResult.permanent_failure("invalid_number"))
    sweep_at(notice.send_at)
    notice = reload(notice)
    assert notice.status == NoticeStatus.SENT
    assert "invalid_number" in notice.skipped["sms"]


# --- retries, deferral, missed windows ---------------------------------------------------


def test_a_failed_send_is_retried_with_backoff_and_then_given() -> None:
    notice = planned()
    locmem.next_results.append(SendResult.retry("provider_down"))
    result = sweep_at(notice.send_at)
    notice = reload(notice)
    assert (result.sent, result.waiting) == (0, 1)
    assert notice.status == NoticeStatus.SENDING
    assert notice.sent_at is None  # push was accepted, SMS was not: not given under "all"
    assert notice.send_at == notice.updated_at + dt.timedelta(seconds=300)
    assert "sms: provider_down" in notice.last_error

    locmem.next_results.append(SendResult.retry("provider_down"))
    sweep_at(notice.send_at)
    second = reload(notice)
    assert second.send_at - second.updated_at == dt.timedelta(seconds=600)  # doubled

    sweep_at(second.send_at)
    notice = reload(notice)
    assert notice.status == NoticeStatus.SENT
    assert len(outbox_of(PushMessage)) == 1  # push was not sent again
    assert Delivery.objects.get(channel="sms").attempts == 3


def test_quiet_hours_defer_the_send_instead_of_failing_it(settings: Settings) -> None:
    notice = planned()
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "QUIET_HOURS": (18, 23)}
    sweep_at(notice.send_at)  # 19:00 in Shanghai: inside quiet hours
    notice = reload(notice)
    assert notice.status == NoticeStatus.SENDING
    assert notice.send_at.astimezone(SHANGHAI).hour == 23
    assert notice.last_error == "deferred: quiet_hours"
    assert locmem.outbox == []
    sweep_at(notice.send_at)
    assert reload(notice).status == NoticeStatus.SENT


def test_provider_down_for_the_whole_window_misses_the_notice_and_holds_the_renewal() -> None:
    notice = planned()
    at = notice.send_at
    while at <= notice.window_closes_at:
        locmem.next_results[:] = [SendResult.retry("provider_down")] * 2
        sweep_at(at)
        notice = reload(notice)
        at = max(notice.send_at, at + dt.timedelta(minutes=1))
    assert notice.attempts > 10  # retried with backoff until the window closed
    assert Delivery.objects.filter(status="queued").count() == 2
    sweep_at(notice.window_closes_at + dt.timedelta(seconds=1))
    notice = reload(notice)
    assert notice.status == NoticeStatus.MISSED
    assert notice.last_error == "the window closed before the notice was given"
    assert not renewal_gate(notice.subscription, notice.renewal_at).allowed


def test_a_notice_no_sweep_reached_is_missed_once_its_window_closed() -> None:
    notice = planned()
    result = sweep_at(notice.window_closes_at + dt.timedelta(seconds=1))
    assert (result.missed, result.claimed) == (1, 0)
    assert reload(notice).status == NoticeStatus.MISSED
    assert locmem.outbox == []


def test_a_notice_whose_renewal_moved_is_withdrawn_not_sent() -> None:
    notice = planned()
    subscription = notice.subscription
    subscription.next_renewal_at = RENEWAL + dt.timedelta(days=30)
    subscription.save()  # moved without re-planning (say, by a gateway sync in progress)
    result = sweep_at(notice.send_at)
    assert result.withdrawn == 1
    assert reload(notice).status == NoticeStatus.WITHDRAWN
    assert locmem.outbox == []


# --- receipts ------------------------------------------------------------------------------


def receipt(
    delivery: Delivery,
    status: Literal["sent", "delivered", "undelivered", "failed"],
    at: dt.datetime,
) -> None:
    apply_receipt(
        backend_alias=delivery.backend_alias,
        receipt=Receipt(provider_message_id=delivery.provider_message_id, status=status, at=at),
    )


def test_a_receipt_that_says_undelivered_takes_the_evidence_back_and_the_channel_is_resent() -> (
    None
):
    notice = planned()
    sweep_at(notice.send_at)
    sms = Delivery.objects.get(channel="sms")
    later = notice.send_at + dt.timedelta(minutes=10)
    with freeze_time(later):
        receipt(sms, "undelivered", later)
    notice = reload(notice)
    assert notice.status == NoticeStatus.SENDING
    assert (notice.sent_at, notice.resends, notice.send_at) == (None, 1, later)
    assert not renewal_gate(notice.subscription, notice.renewal_at).allowed

    sweep_at(later)
    notice = reload(notice)
    assert notice.status == NoticeStatus.SENT
    assert len(outbox_of(SMSMessage)) == 2
    assert len(outbox_of(PushMessage)) == 1
    assert Delivery.objects.filter(idempotency_key=f"notice:{notice.pk}:1:sms").exists()
    assert renewal_gate(notice.subscription, notice.renewal_at).allowed


def test_a_rule_that_waits_for_receipts_counts_the_notice_given_only_when_delivered(
    settings: Settings,
) -> None:
    notice = planned(policy=cn_reminder_with(settings, delivered_when="delivered"))
    sweep_at(notice.send_at)
    notice = reload(notice)
    assert notice.status == NoticeStatus.SENT
    assert notice.given_at is None
    later = notice.send_at + dt.timedelta(minutes=2)
    with freeze_time(later):
        for delivery in Delivery.objects.all():
            receipt(delivery, "delivered", later)
    notice = reload(notice)
    assert notice.status == NoticeStatus.DELIVERED
    assert notice.given_at == later


def test_first_success_stops_at_the_first_channel_a_provider_accepts(settings: Settings) -> None:
    notice = planned(policy=cn_reminder_with(settings, strategy="first_success"))
    with override_settings(SILENCED_SYSTEM_CHECKS=["renewals.E003"]):
        sweep_at(notice.send_at)
    assert reload(notice).status == NoticeStatus.SENT
    assert len(outbox_of(SMSMessage)) == 1
    assert outbox_of(PushMessage) == []


def test_the_fallback_is_tried_as_the_window_nears_its_close(settings: Settings) -> None:
    notice = planned(
        policy=cn_reminder_with(settings, channels=["push"], fallback_channels=["sms"])
    )
    assert notice.fallback_channels == ["sms"]
    fallback_time = notice.window_closes_at - dt.timedelta(hours=6)
    at = notice.send_at
    while at < fallback_time:
        locmem.next_results[:] = [SendResult.retry("push_down")]
        sweep_at(at)
        at = reload(notice).send_at
    assert at == fallback_time  # the backoff stops at the fallback time
    assert outbox_of(SMSMessage) == []
    sweep_at(at)
    notice = reload(notice)
    assert notice.fallback_at == fallback_time
    assert notice.status == NoticeStatus.SENT
    assert notice.sent_at == fallback_time
    assert len(outbox_of(SMSMessage)) == 1
    assert outbox_of(PushMessage) == []
    assert Delivery.objects.filter(dispatch_key=f"notice:{notice.pk}:fallback").count() == 1


def test_refreshing_a_notice_with_no_deliveries_changes_nothing() -> None:
    notice = planned()
    before = reload(notice).updated_at
    assert refresh_notices([notice.pk], now=notice.send_at) == {notice.pk: NoticeStatus.PLANNED}
    assert reload(notice).updated_at == before


def test_a_notice_for_another_pack_with_a_price_in_another_currency_states_it() -> None:
    terms = make_terms(currency="USD", locale="en", service_name="Example Pro")
    notice = planned(terms=terms)
    sweep_at(notice.send_at)
    [sms] = outbox_of(SMSMessage)
    assert "Example Pro" in sms.body
    assert "25.00 USD" in sms.body


def test_a_long_sweep_leases_each_batch_from_the_time_it_claims_it() -> None:
    notice = planned()
    with freeze_time(notice.send_at + dt.timedelta(minutes=10)):
        assert claim_due_notices(now=notice.send_at, limit=1) == [notice.pk]
    lease = reload(notice).lease_until
    assert lease == notice.send_at + dt.timedelta(minutes=10, seconds=300)


def test_a_device_no_backend_serves_leaves_push_skipped_and_sms_gives_the_notice(
    settings: Settings,
) -> None:
    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "BACKENDS": {
            "sms": {"BACKEND": "notifications.backends.locmem.SMSBackend"},
            "fcm": {"BACKEND": "tests.notifications.helpers.FCMPush"},
        },
        "CHANNELS": {"sms": "sms", "push": {"fcm": "fcm"}},
    }
    notice = planned()  # its device's provider is "fcm"; make it one nothing serves
    Device.objects.update(provider="huawei")
    result = sweep_at(notice.send_at)
    notice = reload(notice)
    assert (result.claimed, result.sent) == (1, 1)
    assert notice.status == NoticeStatus.SENT
    assert "no push alias" in notice.skipped["push"]


def test_a_resolver_that_raises_fails_its_notice_alone_and_is_retried(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    broken = planned(subscriber(phone="+8613800000001"))
    fine = planned()
    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "RECIPIENT_RESOLVER": "tests.renewals.test_sweep.resolve_or_break",
    }
    with caplog.at_level(logging.ERROR, logger="renewals.notices"):
        result = sweep_at(fine.send_at)
    assert (result.claimed, result.sent, result.waiting) == (2, 1, 1)
    broken = reload(broken)
    assert broken.status == NoticeStatus.SENDING
    assert broken.last_error == "RuntimeError: resolver bug"
    assert broken.send_at == fine.send_at + dt.timedelta(seconds=300)
    assert "Resolving the recipient of notice" in caplog.text
    assert reload(fine).status == NoticeStatus.SENT


def resolve_or_break(user: User) -> Recipient:
    from .recipients import resolve

    if user.first_name == "+8613800000001":
        raise RuntimeError("resolver bug")
    return resolve(user)


def test_a_sweeps_statements_do_not_grow_with_its_batch() -> None:
    def statements(count: int) -> int:
        notices = [planned() for _ in range(count)]
        with CaptureQueriesContext(connection) as captured:
            assert sweep_at(notices[0].send_at).sent == count
        return len(captured)

    assert statements(2) == statements(6)
