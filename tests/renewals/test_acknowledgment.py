# ruff: noqa: RUF001  (full-width punctuation is correct in Chinese text)
"""Where the rule pack requires it (California, Bus. & Prof. Code § 17602(a)(3)), a sign-up
is acknowledged once it is committed: one message the user can keep, by email first, with the
terms agreed to, the cancellation policy and how to cancel."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.mail import EmailMultiAlternatives
from freezegun import freeze_time
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from notifications.backends import locmem
from notifications.messages import PushMessage, SMSMessage
from notifications.models import Delivery, Device
from renewals.links import manage_url
from renewals.models import AuditEvent, RenewalTerms, Subscription
from renewals.services import (
    confirmations,
    evidence_pack,
    send_confirmation,
    send_pending_confirmations,
    subscribe,
)
from renewals.services.confirmations import acknowledgment_channels
from renewals.types import User

from .factories import PHONE, SUBSCRIBED_AT, make_evidence, make_subscription, make_terms, make_user
from .fakes import rolled_back
from .recipients import RESOLVER_WITH_EMAIL

pytestmark = pytest.mark.django_db

LOS_ANGELES = "America/Los_Angeles"
US_PHONE = "+14155550100"
#: SUBSCRIBED_AT in Los Angeles is 9 February, 5 p.m.: a month later, before DST begins.
FIRST_RENEWAL = {"en": "March 9, 2027, 5 p.m.", "zh-hans": "2027年3月9日 17:00"}
CANCEL_HOW = "Open Account, then Subscriptions, and press Turn off auto-renewal."
WORDING = "Renews automatically every month at 25.00 USD until you cancel."


@pytest.fixture(autouse=True)
def _resolver(settings: Settings) -> None:
    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "RECIPIENT_RESOLVER": RESOLVER_WITH_EMAIL,
        "RATE_LIMIT": None,
    }


def californian(*, email: str = "ann@example.com", locale: str = "en") -> User:
    """A user reachable by email, SMS and push, who reads ``locale``."""
    user = make_user(email=email, first_name=US_PHONE, last_name=locale)
    Device.objects.create(user=user, platform="ios", provider="apns", token=f"tok-{user.pk}")
    return user


def offer(**fields: Any) -> RenewalTerms:
    """A monthly offer at 25.00 USD, written in English."""
    return make_terms(
        currency="USD",
        locale="en",
        renewal_wording=WORDING,
        cancellation_method=CANCEL_HOW,
        **fields,
    )


def sign_up(
    user: User, terms: RenewalTerms | None = None, *, policy: str = "us-ca"
) -> Subscription:
    terms = terms or offer()
    return subscribe(user, terms, make_evidence(terms), policy=policy, time_zone=LOS_ANGELES)


def signed_up(
    capture: DjangoCaptureOnCommitCallbacks,
    user: User,
    terms: RenewalTerms | None = None,
    *,
    policy: str = "us-ca",
    at: dt.datetime = SUBSCRIBED_AT,
) -> Subscription:
    """``user`` signed up at ``at``, and the tasks enqueued on commit run (then, too)."""
    with freeze_time(at), capture(execute=True):
        return sign_up(user, terms, policy=policy)


def subscribed_event(subscription: Subscription) -> AuditEvent:
    return subscription.audit_events.get(kind="subscribed")


def acknowledgments() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(kind="acknowledgment_sent"))


@pytest.mark.parametrize(
    ("locale", "subject", "lines"),
    [
        (
            "en",
            "Example Plus: your auto-renewal terms and how to cancel",
            [
                f"Automatic renewal: {WORDING}",
                "Price: 25.00 USD per month, charged automatically at every renewal until you "
                "turn auto-renewal off.",
                f"First renewal: {FIRST_RENEWAL['en']}",
                "Cancellation policy: you can turn off auto-renewal at any time, online. Your "
                "subscription then runs to the end of the period you have paid for",
                f"How to cancel: {CANCEL_HOW}",
            ],
        ),
        (
            "zh-hans",
            "Example Plus自动续费条款与关闭方式",
            [
                f"自动续费：{WORDING}",
                "价格：每月 25.00 USD，在您关闭自动续费之前，每次续费时自动扣费。",
                f"首次续费：{FIRST_RENEWAL['zh-hans']}",
                "取消政策：您可以随时在线关闭自动续费。关闭后，订阅持续到已付费期间结束",
                f"关闭方式：{CANCEL_HOW}",
            ],
        ),
    ],
    ids=["en", "zh-hans"],
)
def test_a_californian_gets_one_acknowledgment_by_email(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    mailoutbox: list[EmailMultiAlternatives],
    locale: str,
    subject: str,
    lines: list[str],
) -> None:
    subscription = signed_up(django_capture_on_commit_callbacks, californian(locale=locale))

    [email] = mailoutbox
    assert email.to == ["ann@example.com"]
    assert email.subject == subject
    for line in lines:
        assert line in email.body
    manage = manage_url()
    assert email.body.endswith(f"\n{manage}")
    [(html, _mimetype)] = email.alternatives
    assert f'<a href="{manage}"' in str(html)
    assert locmem.outbox == []  # email first, and only one of the channels

    event = subscribed_event(subscription)
    [delivery] = Delivery.objects.filter(dispatch_key=f"confirm:{event.pk}")
    [recorded] = acknowledgments()
    assert recorded.subscription_id == subscription.pk
    assert recorded.data["event"] == event.pk
    assert recorded.data["template"] == "renewals.acknowledgment"
    assert recorded.data["deliveries"] == [
        {"id": delivery.pk, "channel": "email", "status": "sent"}
    ]
    audit = evidence_pack(subscription)["audit"]["events"]
    assert [e["data"]["deliveries"] for e in audit if e["kind"] == "acknowledgment_sent"] == [
        recorded.data["deliveries"]
    ]

    assert send_confirmation(event.pk)  # a redelivered task: sends and records nothing more
    assert send_pending_confirmations(SUBSCRIBED_AT + dt.timedelta(hours=1)) == 0
    assert len(mailoutbox) == 1
    assert len(acknowledgments()) == 1


@pytest.mark.parametrize(
    ("locale", "sentences"),
    [
        (
            "en",
            [
                "Example Plus: your free trial, auto-renewal terms and how to cancel",
                "Free trial: it ends on March 11, 2027, 5 p.m.; turn off auto-renewal before "
                "then and you are not charged.",
                "First payment: March 11, 2027, 5 p.m.",
                "Turned off during the free trial, your subscription ends with the trial and "
                "you are not charged",
                "To cancel before the first payment, or to manage your subscription, open "
                "this link:",
                f"How to cancel: {CANCEL_HOW}",
            ],
        ),
        (
            "zh-hans",
            [
                "Example Plus免费试用、自动续费条款与关闭方式",
                "免费试用：将于2027年3月11日 17:00结束；在此之前关闭自动续费，您不会被扣费。",
                "首次扣费：2027年3月11日 17:00",
                "在免费试用期间关闭，订阅于试用结束时终止，不会扣费",
                "如需在首次扣费前关闭自动续费或管理订阅，请打开以下链接：",
                f"关闭方式：{CANCEL_HOW}",
            ],
        ),
    ],
    ids=["en", "zh-hans"],
)
def test_a_trial_acknowledgment_says_how_to_cancel_before_the_first_payment(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    mailoutbox: list[EmailMultiAlternatives],
    locale: str,
    sentences: list[str],
) -> None:
    subscription = signed_up(
        django_capture_on_commit_callbacks, californian(locale=locale), offer(trial_days=30)
    )

    [email] = mailoutbox
    text = f"{email.subject}\n{email.body}"
    for sentence in sentences:
        assert sentence in text
    assert manage_url() in email.body
    [recorded] = acknowledgments()
    assert recorded.data["event"] == subscribed_event(subscription).pk
    assert recorded.data["template"] == "renewals.trial_acknowledgment"


def test_a_californian_without_an_address_gets_the_acknowledgment_by_sms(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    mailoutbox: list[EmailMultiAlternatives],
) -> None:
    signed_up(django_capture_on_commit_callbacks, californian(email=""))

    assert mailoutbox == []
    [sms] = locmem.outbox
    assert isinstance(sms, SMSMessage)
    assert sms.to == US_PHONE
    assert sms.body.startswith(
        "Example Plus: you subscribed with auto-renewal at 25.00 USD per month, first charged "
        f"on {FIRST_RENEWAL['en']}, then at every renewal until you turn it off. {CANCEL_HOW}"
    )
    assert sms.body.endswith(f"Turn off auto-renewal: {manage_url()}")
    assert [d["channel"] for d in acknowledgments()[0].data["deliveries"]] == ["sms"]


def test_a_pack_without_the_requirement_sends_no_acknowledgment(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    mailoutbox: list[EmailMultiAlternatives],
) -> None:
    user = make_user(first_name=PHONE, last_name="zh-hans")
    subscription = signed_up(django_capture_on_commit_callbacks, user, make_terms(), policy="cn")

    assert subscription.policy == "cn"
    assert mailoutbox == []
    assert locmem.outbox == []
    assert not Delivery.objects.exists()
    assert send_pending_confirmations(SUBSCRIBED_AT + dt.timedelta(hours=1)) == 0
    assert acknowledgments() == []
    with pytest.raises(ValueError, match="has no confirmation"):
        send_confirmation(subscribed_event(subscription).pk)


def test_the_flag_decides_not_the_pack(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks, settings: Settings
) -> None:
    settings.RENEWALS = {
        **settings.RENEWALS,
        "POLICIES": {
            "cn-acknowledged": {"extends": "cn", "consent": {"acknowledgment_required": True}}
        },
    }
    user = make_user(first_name=PHONE, last_name="zh-hans")
    signed_up(django_capture_on_commit_callbacks, user, make_terms(), policy="cn-acknowledged")

    [sms] = [m for m in locmem.outbox if isinstance(m, SMSMessage)]
    assert sms.body.startswith("【Example Plus】您已开通自动续费，价格为每月 25.00 CNY，将于")
    assert [m for m in locmem.outbox if isinstance(m, PushMessage)] == []  # first_success
    assert len(acknowledgments()) == 1


@pytest.mark.parametrize(
    ("at", "acknowledged"),
    [
        # 30 June, 11:59:59 p.m. in Los Angeles: before the California pack is in force.
        (dt.datetime(2025, 7, 1, 6, 59, 59, tzinfo=dt.UTC), False),
        # 1 July, midnight in Los Angeles: the first day it is.
        (dt.datetime(2025, 7, 1, 7, tzinfo=dt.UTC), True),
    ],
    ids=["june-30-in-los-angeles", "july-1-in-los-angeles"],
)
def test_only_a_sign_up_on_a_day_the_pack_is_in_force_is_acknowledged(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    mailoutbox: list[EmailMultiAlternatives],
    at: dt.datetime,
    acknowledged: bool,
) -> None:
    signed_up(django_capture_on_commit_callbacks, californian(), at=at)

    assert len(mailoutbox) == len(acknowledgments()) == int(acknowledged)
    with freeze_time(at + dt.timedelta(hours=1)):
        assert send_pending_confirmations() == 0


def test_a_sign_up_rolled_back_sends_nothing(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    mailoutbox: list[EmailMultiAlternatives],
) -> None:
    user = californian()
    with freeze_time(SUBSCRIBED_AT), django_capture_on_commit_callbacks(execute=True) as tasks:
        rolled_back(lambda: sign_up(user))

    assert tasks == []
    assert mailoutbox == []
    assert not Delivery.objects.exists()
    assert send_pending_confirmations(SUBSCRIBED_AT + dt.timedelta(hours=1)) == 0


def test_the_repair_sends_a_lost_acknowledgment_once(
    mailoutbox: list[EmailMultiAlternatives],
) -> None:
    with freeze_time(SUBSCRIBED_AT):
        # Not captured: the on-commit task is lost, as with a broker that dropped it.
        subscription = sign_up(californian())
    assert mailoutbox == []

    later = SUBSCRIBED_AT + dt.timedelta(hours=1)
    with freeze_time(later):
        assert send_pending_confirmations() == 1
    [email] = mailoutbox
    assert email.subject == "Example Plus: your auto-renewal terms and how to cancel"
    [recorded] = acknowledgments()
    assert recorded.data["event"] == subscribed_event(subscription).pk
    with freeze_time(later + dt.timedelta(hours=1)):
        assert send_pending_confirmations() == 0
    assert len(mailoutbox) == 1


def test_the_repair_records_an_acknowledgment_a_crash_left_unrecorded(
    mailoutbox: list[EmailMultiAlternatives], monkeypatch: pytest.MonkeyPatch
) -> None:
    with freeze_time(SUBSCRIBED_AT):
        subscription = sign_up(californian())
    event = subscribed_event(subscription)

    def crash(*args: object) -> None:
        raise RuntimeError("worker killed")

    with monkeypatch.context() as patch:
        patch.setattr(confirmations, "_record_acknowledgment", crash)
        with pytest.raises(RuntimeError):
            send_confirmation(event.pk)  # the email went out, then the worker died
    assert len(mailoutbox) == 1
    assert acknowledgments() == []

    assert send_pending_confirmations(SUBSCRIBED_AT + dt.timedelta(hours=1)) == 1
    assert len(mailoutbox) == 1  # not sent again
    [recorded] = acknowledgments()
    [delivery] = Delivery.objects.all()
    assert recorded.data["deliveries"] == [
        {"id": delivery.pk, "channel": "email", "status": "sent"}
    ]
    assert send_pending_confirmations(SUBSCRIBED_AT + dt.timedelta(hours=2)) == 0


def test_a_californian_who_cannot_be_reached_is_skipped_once(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    subscription = signed_up(django_capture_on_commit_callbacks, make_user(email=""))

    skipped = AuditEvent.objects.get(kind="confirmation_skipped")
    assert skipped.data["event"] == subscribed_event(subscription).pk
    assert acknowledgments() == []
    assert send_pending_confirmations(SUBSCRIBED_AT + dt.timedelta(hours=1)) == 0


def test_the_acknowledgment_channels_put_email_first(settings: Settings) -> None:
    settings.RENEWALS = {
        **settings.RENEWALS,
        "POLICIES": {
            "us-ca-sms-first": {
                "extends": "us-ca",
                "notices": [{"id": "annual-term-renewal", "channels": ["sms", "email", "push"]}],
            }
        },
    }
    assert acknowledgment_channels(make_subscription(policy="us-ca-sms-first")) == [
        "email",
        "sms",
        "push",
    ]
    assert acknowledgment_channels(make_subscription(policy="cn")) == ["sms", "push"]
