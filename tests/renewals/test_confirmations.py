# ruff: noqa: RUF001  (full-width punctuation is correct in Chinese text)
"""After a cancel or a resume the user gets one confirmation, sent after the commit only."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from notifications.backends import locmem
from notifications.messages import PushMessage, SendResult, SMSMessage
from notifications.models import Delivery, Device
from renewals.models import AuditEvent, Subscription
from renewals.services import (
    cancel_auto_renewal,
    resume_auto_renewal,
    send_confirmation,
    send_pending_confirmations,
)
from renewals.services.confirmations import confirmation_channels

from .factories import (
    PHONE,
    SUBSCRIBED_AT,
    make_evidence,
    make_subscription,
    make_user,
    subscribe_with_consent,
)
from .fakes import RecordingGateway, rolled_back

pytestmark = pytest.mark.django_db

START = SUBSCRIBED_AT
CANCELLED_AT = dt.datetime(2027, 2, 20, 4, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _settings(settings: Settings, reachable_users: None) -> None:
    RecordingGateway.install(settings)


def subscriber(
    *, phone: str | None = PHONE, device: bool = True, locale: str = "zh-hans"
) -> Subscription:
    user = make_user(first_name=phone or "", last_name=locale)
    if device:
        Device.objects.create(user=user, platform="android", provider="fcm", token=f"t{user.pk}")
    return subscribe_with_consent(user, at=START)


def sms_bodies() -> list[str]:
    return [m.body for m in locmem.outbox if isinstance(m, SMSMessage)]


def pushes() -> list[PushMessage]:
    return [m for m in locmem.outbox if isinstance(m, PushMessage)]


def cancelled_event() -> AuditEvent:
    return AuditEvent.objects.get(kind="auto_renewal_cancelled")


@freeze_time(CANCELLED_AT)
@pytest.mark.parametrize(
    ("locale", "when"),
    [("zh-hans", "2027年3月10日 09:00"), ("en", "March 10, 2027, 9 a.m.")],
)
def test_a_cancel_is_confirmed_once_by_sms_and_push_after_the_commit(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks, locale: str, when: str
) -> None:
    subscription = subscriber(locale=locale)
    with django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(subscription, actor=subscription.user, via="manage_page")
        assert locmem.outbox == []  # not before the commit

    (sms,) = sms_bodies()
    assert when in sms  # the end of the paid term, in Shanghai time
    (push,) = pushes()
    assert when in push.body
    event = cancelled_event()
    deliveries = Delivery.objects.filter(dispatch_key=f"confirm:{event.pk}")
    assert deliveries.count() == 2
    assert {d.reference for d in deliveries} == {f"renewals.subscription:{subscription.pk}"}

    assert send_confirmation(event.pk)  # a redelivered task: accepted before, sent no more
    assert send_pending_confirmations() == 0
    assert len(locmem.outbox) == 2


@freeze_time(CANCELLED_AT)
def test_a_resume_is_confirmed_with_the_next_renewal_and_its_amount(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    subscription = subscriber()
    cancel_auto_renewal(subscription, actor=None, via="system")
    with django_capture_on_commit_callbacks(execute=True):
        resume_auto_renewal(
            subscription, evidence=make_evidence(subscription.terms), actor=subscription.user
        )
    (sms,) = sms_bodies()
    assert sms == "【Example Plus】您已开通自动续费，将于2027年3月10日 09:00扣费25.00 CNY。"


def test_a_cancel_rolled_back_sends_nothing(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    subscription = subscriber()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        rolled_back(lambda: cancel_auto_renewal(subscription, actor=None, via="system"))
    assert callbacks == []
    assert locmem.outbox == []
    assert not Delivery.objects.exists()


def test_the_repair_sends_a_lost_confirmation_once() -> None:
    subscription = subscriber()
    with freeze_time(CANCELLED_AT):
        # Not captured: the on-commit task is lost, as with a broker that dropped it.
        cancel_auto_renewal(subscription, actor=None, via="system")
    assert locmem.outbox == []

    later = CANCELLED_AT + dt.timedelta(hours=1)
    with freeze_time(later):
        assert send_pending_confirmations() == 1
    assert len(sms_bodies()) == len(pushes()) == 1
    with freeze_time(later + dt.timedelta(hours=1)):
        assert send_pending_confirmations() == 0
    assert len(locmem.outbox) == 2


def test_the_repair_looks_back_only_so_far() -> None:
    subscription = subscriber()
    with freeze_time(CANCELLED_AT):
        cancel_auto_renewal(subscription, actor=None, via="system")
    assert send_pending_confirmations(CANCELLED_AT + dt.timedelta(days=4)) == 0
    assert send_pending_confirmations(CANCELLED_AT + dt.timedelta(days=4), days=5) == 1


def test_the_repair_retries_a_confirmation_the_provider_could_not_take(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    subscription = subscriber(device=False)
    locmem.next_results.append(SendResult.retry("provider_down"))
    with django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(subscription, actor=None, via="system")
    assert sms_bodies() == []
    assert send_pending_confirmations() == 1
    assert len(sms_bodies()) == 1
    assert send_pending_confirmations() == 0


def test_a_user_who_cannot_be_reached_is_logged_and_skipped(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    caplog: pytest.LogCaptureFixture,
) -> None:
    subscription = subscriber(phone=None, device=False)
    with django_capture_on_commit_callbacks(execute=True):
        result = cancel_auto_renewal(subscription, actor=None, via="system")
    assert result.changed
    assert "No confirmation of auto_renewal_cancelled" in caplog.text
    skipped = AuditEvent.objects.get(kind="confirmation_skipped")
    assert skipped.data["event"] == cancelled_event().pk
    assert "no phone number" in skipped.data["reason"]
    assert send_pending_confirmations() == 0  # not tried again


def test_a_user_reachable_on_no_confirmation_channel_is_skipped(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks, settings: Settings
) -> None:
    settings.RENEWALS = {
        **settings.RENEWALS,
        "POLICIES": {
            "cn-push": {
                "extends": "cn",
                "notices": [
                    {"id": "renewal-reminder", "channels": ["push"]},
                    {"id": "price-change-consent", "channels": ["push"]},
                ],
            }
        },
    }
    user = make_user(first_name=PHONE)
    subscription = make_subscription(user=user, policy="cn-push", gateway="recording")
    assert confirmation_channels(subscription) == ["push"]
    with django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(subscription, actor=None, via="system")
    assert locmem.outbox == []
    assert (
        "push: no active push device"
        in (AuditEvent.objects.get(kind="confirmation_skipped").data["reason"])
    )


def test_the_channels_are_the_packs_notice_channels_else_those_it_accepts() -> None:
    assert confirmation_channels(make_subscription(policy="cn")) == ["sms", "push"]
    assert confirmation_channels(make_subscription(policy="us-ca")) == ["email", "sms", "push"]
    no_notices = make_subscription(policy="uk")
    assert confirmation_channels(no_notices) == ["email", "sms", "push"]


def test_only_a_cancel_or_a_resume_has_a_confirmation() -> None:
    subscription = subscriber()
    event = AuditEvent.objects.get(subscription=subscription, kind="subscribed")
    with pytest.raises(ValueError, match="has no confirmation"):
        send_confirmation(event.pk)
