"""Rule packs say which channels give their notices: under ``us-ca`` the reminder goes by
email (Django's mail, here its locmem backend), under ``cn`` only SMS and push count."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.mail import EmailMessage as DjangoEmail
from django.test import override_settings
from freezegun import freeze_time
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from notifications.backends import locmem
from notifications.models import Delivery, Device
from renewals.links import cancel_url
from renewals.models import NoticeStatus, RenewalNotice
from renewals.policies.checks import check_policies
from renewals.services import cancel_auto_renewal, plan_notices, record_consent, renewal_gate
from renewals.services.sweep import send_due_notices
from renewals.types import User

from .factories import make_evidence, make_subscription, make_terms, make_user
from .fakes import RecordingGateway
from .recipients import RESOLVER_WITH_EMAIL

pytestmark = pytest.mark.django_db

PHONE = "+14155550100"
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
PLANNED_AT = dt.datetime(2027, 1, 2, tzinfo=dt.UTC)
RENEWAL = dt.datetime(2027, 3, 10, 9, tzinfo=LOS_ANGELES)


@pytest.fixture(autouse=True)
def _resolver(settings: Settings) -> None:
    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "RECIPIENT_RESOLVER": RESOLVER_WITH_EMAIL,
        "RATE_LIMIT": None,
    }


def subscriber(*, email: str = "ann@example.com", phone: str = PHONE, device: bool = True) -> Any:
    user = make_user(email=email, first_name=phone, last_name="en")
    if device:
        Device.objects.create(user=user, platform="ios", provider="apns", token=f"tok-{user.pk}")
    return user


def planned(user: User, policy: str) -> RenewalNotice:
    """The first notice planned for ``user``'s yearly subscription under ``policy``."""
    terms = make_terms(amount=Decimal("99.00"), currency="USD", interval="year", locale="en")
    with freeze_time(PLANNED_AT):
        subscription = make_subscription(
            user=user,
            terms=terms,
            policy=policy,
            next_renewal_at=RENEWAL,
            time_zone="America/Los_Angeles",
        )
        record_consent(subscription, make_evidence(terms), actor=user)
        notices = plan_notices(subscription)
    return notices[0]


def sweep_at(at: dt.datetime) -> None:
    with freeze_time(at):
        send_due_notices()


def test_a_california_reminder_goes_by_email_and_gives_the_notice(
    mailoutbox: list[DjangoEmail],
) -> None:
    notice = planned(subscriber(), "us-ca")
    assert notice.channels == ["email", "sms", "push"]

    sweep_at(notice.send_at)

    [message] = mailoutbox
    assert message.to == ["ann@example.com"]
    assert message.subject == "Example Plus: your subscription renews on March 10, 2027"
    assert "you will be charged 99.00 USD" in message.body
    with freeze_time(notice.send_at):
        assert cancel_url(notice) in message.body
    assert locmem.outbox == []  # first_success: no SMS, no push once the email is accepted
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENT
    [delivery] = Delivery.objects.all()
    assert (delivery.channel, delivery.idempotency_key) == ("email", f"notice:{notice.pk}:email")
    assert renewal_gate(notice.subscription, notice.renewal_at).allowed

    sweep_at(notice.send_at + dt.timedelta(hours=1))
    assert len(mailoutbox) == 1  # never twice


def test_a_californian_without_an_address_gets_the_sms(mailoutbox: list[DjangoEmail]) -> None:
    notice = planned(subscriber(email=""), "us-ca")

    sweep_at(notice.send_at)

    assert mailoutbox == []
    [sms] = locmem.outbox
    assert sms.to == PHONE  # type: ignore[union-attr]
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENT
    assert notice.skipped == {"email": "no email address"}


def test_under_cn_an_address_alone_does_not_give_the_notice(
    mailoutbox: list[DjangoEmail],
) -> None:
    notice = planned(subscriber(phone="", device=False), "cn")
    assert notice.channels == ["sms", "push"]

    sweep_at(notice.send_at)

    assert mailoutbox == []
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.MISSED
    assert "cannot be reached on any channel" in notice.last_error
    assert not renewal_gate(notice.subscription, notice.renewal_at).allowed


def test_the_cancel_confirmation_of_a_californian_is_emailed(
    mailoutbox: list[DjangoEmail],
    settings: Settings,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    RecordingGateway.install(settings)
    user = subscriber(phone="", device=False)
    subscription = make_subscription(user=user, policy="us-ca", gateway="recording")
    with django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(subscription, actor=None, via="system")

    [message] = mailoutbox
    assert message.subject == "Example Plus: auto-renewal is off"
    assert "Keep this email as your confirmation." in message.body


def check_ids(policies: dict[str, Any]) -> list[str]:
    with override_settings(RENEWALS={"BASE_URL": "https://shop.example", "POLICIES": policies}):
        return [str(message.id) for message in check_policies()]


def test_the_packs_say_which_channels_give_their_notices() -> None:
    assert check_ids({}) == []
    email_first = {"id": "annual-term-renewal", "channels": ["email", "sms", "push"]}
    assert check_ids({"mine": {"extends": "us-ca", "notices": [email_first]}}) == []
    # cn: MIIT item 7 names SMS and push; a pack built on it may not count email.
    assert check_ids({"cn-mail": {"extends": "cn", "channels": ["sms", "push", "email"]}}) == [
        "renewals.E003"
    ]
    by_email = {"id": "renewal-reminder", "channels": ["sms", "push", "email"]}
    assert check_ids({"cn-mail": {"extends": "cn", "notices": [by_email]}}) == ["renewals.E001"]


def test_the_e003_message_names_the_channel_cn_does_not_accept() -> None:
    with override_settings(
        RENEWALS={
            "BASE_URL": "https://shop.example",
            "POLICIES": {"cn-mail": {"extends": "cn", "channels": ["sms", "push", "email"]}},
        }
    ):
        [message] = check_policies()
    assert "accepts email, which the built-in pack does not accept" in message.msg
    assert "Keep channels among sms, push" in str(message.hint)
    assert "MIIT" in str(message.hint)


def test_a_default_pack_that_emails_without_an_email_channel_is_warned() -> None:
    renewals = {"BASE_URL": "https://shop.example", "DEFAULT_POLICY": "us-ca"}
    sms_and_push = {
        "sms": {"BACKEND": "notifications.backends.locmem.SMSBackend"},
        "push": {"BACKEND": "notifications.backends.locmem.PushBackend"},
    }
    with override_settings(RENEWALS=renewals, NOTIFICATIONS={"BACKENDS": sms_and_push}):
        [message] = check_policies()
    assert message.id == "renewals.W003"
    assert "'us-ca' gives notices by email" in message.msg
    with override_settings(RENEWALS=renewals):  # the test settings have an "email" alias
        assert check_policies() == []
    with override_settings(NOTIFICATIONS={"BACKENDS": sms_and_push}):  # default pack: cn
        assert check_policies() == []
