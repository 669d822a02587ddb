# ruff: noqa: RUF001  (full-width punctuation is correct in Chinese text)
"""The email channel: Django's mail backends (locmem here: ``django.core.mail.outbox``),
the message per language, idempotency, failures and retries, anymail's ids and receipts."""

from __future__ import annotations

import datetime as dt
import io
import smtplib
import sys
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import django
import pytest
from anymail.exceptions import AnymailCancelSend
from anymail.signals import AnymailTrackingEvent, pre_send, tracking
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage as DjangoEmail
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend
from django.test import override_settings
from pydantic import BaseModel
from pytest_django import Settings

from notifications.backends import locmem
from notifications.backends.email import EmailBackend, connect_anymail_receipts, message_id
from notifications.checks import check_deploy_backends, check_settings
from notifications.conf import notifications_settings
from notifications.dispatch import DispatchResult, Notification, Request, send, send_many
from notifications.exceptions import InvalidRecipient
from notifications.message_templates import LocalizedText, MessageTemplate, register
from notifications.messages import EmailMessage
from notifications.models import Delivery, OutboxMessage, UnmatchedReceipt
from notifications.recipients import Recipient, resolve_recipient
from notifications.types import User

from .helpers import CONTEXT, configure

pytestmark = pytest.mark.django_db

ADDRESS = "ann.lee@example.com"
LINK = "https://shop.example/c/abc?x=1&y=2"
EMAIL = {"BACKEND": "notifications.backends.email.EmailBackend"}
FLAKY = {**EMAIL, "OPTIONS": {"backend": "tests.notifications.test_backend_email.FlakyMail"}}
ESP = {**EMAIL, "OPTIONS": {"backend": "tests.notifications.test_backend_email.FakeESP"}}
ANYMAIL_TEST = {**EMAIL, "OPTIONS": {"backend": "anymail.backends.test.EmailBackend"}}


class NoticeFields(BaseModel):
    name: str
    url: str


NOTICE = MessageTemplate(
    key="tests.email_notice",
    fields=NoticeFields,
    texts={
        "en": LocalizedText(
            sms="Hi {name}: {url}",
            push_title="Hi {name}",
            push_body="Tap",
            email_subject="Your plan, {name}",
            email_body="Dear {name},\n\nYour plan renews soon.\n\nCancel: {url}",
        ),
        "zh-hans": LocalizedText(
            sms="{name}您好：{url}",
            push_title="{name}您好",
            push_body="点击",
            email_subject="{name}，您的套餐即将续费",
            email_body="{name}您好：\n\n您的套餐即将续费。\n\n一键关闭：\n{url}",
        ),
    },
)


def notice(name: str = "Ann", locale: str | None = None) -> Notification:
    return Notification(NOTICE.key, {"name": name, "url": LINK}, locale=locale)


def to(address: str = ADDRESS, locale: str = "en") -> Recipient:
    return Recipient(email=address, locale=locale)


@pytest.fixture(autouse=True)
def _notice_template() -> None:
    register(NOTICE)


@pytest.fixture(autouse=True)
def _no_rate_limit(settings: Settings) -> None:
    settings.NOTIFICATIONS = {**settings.NOTIFICATIONS, "RATE_LIMIT": None}


class FlakyMail(BaseEmailBackend):
    """A Django mail backend that raises the exceptions in :data:`failures` for the next
    messages (``None``: sends), and keeps what it sent in :data:`sent`."""

    failures: list[Exception | None] = []
    sent: list[DjangoEmail] = []
    open_error: Exception | None = None

    def open(self) -> bool:
        if FlakyMail.open_error is not None:
            raise FlakyMail.open_error
        return True

    def send_messages(self, email_messages: Sequence[DjangoEmail]) -> int:
        for message in email_messages:
            failure = FlakyMail.failures.pop(0) if FlakyMail.failures else None
            if failure is not None:
                raise failure
            FlakyMail.sent.append(message)
        return len(email_messages)


class FakeESP(BaseEmailBackend):
    """Sets ``anymail_status`` as django-anymail does: the ESP's id, and each address's
    status from :data:`statuses` (``"rejected"`` raises, as anymail does for refused ones)."""

    statuses: dict[str, str] = {}

    def send_messages(self, email_messages: Sequence[DjangoEmail]) -> int:
        for message in email_messages:
            [address] = message.to
            status = FakeESP.statuses.get(address, "queued")
            message.anymail_status = SimpleNamespace(  # type: ignore[attr-defined]
                message_id=f"esp-{address}", status={status}
            )
            if status == "rejected":
                raise RuntimeError("AnymailRecipientsRefused: the ESP refused every recipient")
        return len(email_messages)


@pytest.fixture(autouse=True)
def _reset_fakes() -> Iterator[None]:
    yield
    FlakyMail.failures, FlakyMail.sent, FlakyMail.open_error = [], [], None
    FakeESP.statuses = {}


def html_of(message: DjangoEmail) -> str:
    assert isinstance(message, EmailMultiAlternatives)
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return str(html)


# --- the message ---------------------------------------------------------------------------


def test_an_email_has_the_subject_text_html_and_headers_of_its_language(
    mailoutbox: list[DjangoEmail], settings: Settings
) -> None:
    settings.DEFAULT_FROM_EMAIL = "Shop <billing@Shop.example>"
    result = send(to(), notice(), channels=("email",), idempotency_key="k1")

    [delivery] = result.deliveries
    [message] = mailoutbox
    assert message.to == [ADDRESS]
    assert message.from_email == "Shop <billing@Shop.example>"
    assert message.subject == "Your plan, Ann"
    assert message.body == f"Dear Ann,\n\nYour plan renews soon.\n\nCancel: {LINK}"
    html = html_of(message)
    assert '<html lang="en">' in html
    assert "<title>Your plan, Ann</title>" in html
    assert "<p>Your plan renews soon.</p>" in html
    assert f'<a href="{LINK.replace("&", "&amp;")}"' in html  # the link, escaped
    assert message.extra_headers["Message-ID"] == message_id("k1:email", "Shop.example")
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    assert (delivery.channel, delivery.status, delivery.attempts) == ("email", "sent", 1)
    assert delivery.recipient == "a***@example.com"
    assert delivery.provider_message_id == message.extra_headers["Message-ID"]


def test_a_chinese_recipient_gets_the_chinese_email(mailoutbox: list[DjangoEmail]) -> None:
    send(to(locale="zh-CN"), notice("安"), channels=("email",), idempotency_key="k1")

    [message] = mailoutbox
    assert message.subject == "安，您的套餐即将续费"
    assert message.body.startswith("安您好：\n\n您的套餐即将续费。")
    html = html_of(message)
    assert '<html lang="zh-hans">' in html
    assert "<p>您的套餐即将续费。</p>" in html
    assert f'一键关闭：<br><a href="{LINK.replace("&", "&amp;")}"' in html


def test_fields_are_escaped_in_the_html_and_the_subject_is_one_line(
    mailoutbox: list[DjangoEmail],
) -> None:
    send(to(), notice("<b>Ann</b>\nBcc: x@evil.example"), channels=("email",), idempotency_key="k")

    [message] = mailoutbox
    assert message.subject == "Your plan, <b>Ann</b> Bcc: x@evil.example"
    assert message.recipients() == [ADDRESS]
    assert "&lt;b&gt;Ann&lt;/b&gt;" in html_of(message)
    assert "<b>Ann</b>" not in html_of(message)


def test_a_project_s_html_template_gets_the_fields_in_the_message_s_language(
    mailoutbox: list[DjangoEmail], settings: Settings
) -> None:
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {
                            "notifications/email/message.html": (
                                "{% load i18n %}{% get_current_language as language %}"
                                '<p lang="{{ language }}">{{ fields.name }}: '
                                '<a href="{{ fields.url }}">{{ subject }}</a></p>'
                            )
                        },
                    )
                ]
            },
        }
    ]
    send(to(locale="zh-hans"), notice("安"), channels=("email",), idempotency_key="k")

    [message] = mailoutbox
    assert html_of(message) == (
        f'<p lang="zh-hans">安: <a href="{LINK.replace("&", "&amp;")}">安，您的套餐即将续费</a></p>'
    )


def test_a_template_without_email_texts_sends_its_push_title_and_sms(
    mailoutbox: list[DjangoEmail],
) -> None:
    send(to(), Notification("tests.greeting", CONTEXT), channels=("email",), idempotency_key="k")

    [message] = mailoutbox
    assert (message.subject, message.body) == ("Hi", "Hello Ann, code 42")


def test_the_from_address_of_the_options_wins(mailoutbox: list[DjangoEmail]) -> None:
    options = {"from_email": "reminders@mail.example"}
    with configure(BACKENDS={"email": {**EMAIL, "OPTIONS": options}}, RATE_LIMIT=None):
        send(to(), notice(), channels=("email",), idempotency_key="k")

    [message] = mailoutbox
    assert message.from_email == "reminders@mail.example"
    assert message.extra_headers["Message-ID"].endswith("@mail.example>")


# --- idempotency ---------------------------------------------------------------------------


def test_the_same_key_never_emails_twice(mailoutbox: list[DjangoEmail]) -> None:
    first = send(to(), notice(), channels=("email",), idempotency_key="k")
    again = send(to(), notice(), channels=("email",), idempotency_key="k")

    assert len(mailoutbox) == 1
    assert [d.pk for d in again.deliveries] == [d.pk for d in first.deliveries]
    assert Delivery.objects.get().attempts == 1


def test_the_message_id_is_the_same_for_every_copy_and_hides_the_key() -> None:
    seven = message_id("notice:7:email", "shop.example")
    assert seven == message_id("notice:7:email", "shop.example")
    assert seven != message_id("notice:8:email", "shop.example")
    assert seven.startswith("<")
    assert seven.endswith("@shop.example>")
    assert "notice" not in seven
    with override_settings(SECRET_KEY="another-secret"):
        assert message_id("notice:7:email", "shop.example") != seven


# --- failures and retries ------------------------------------------------------------------


def test_a_refused_address_fails_the_delivery_with_the_error_masked() -> None:
    FlakyMail.failures = [
        smtplib.SMTPRecipientsRefused({ADDRESS: (550, b"5.1.1 " + ADDRESS.encode() + b" unknown")})
    ]
    with configure(BACKENDS={"email": FLAKY}, RATE_LIMIT=None):
        result = send(to(), notice(), channels=("email",), idempotency_key="k")
        again = send(to(), notice(), channels=("email",), idempotency_key="k")

    [delivery] = again.deliveries
    assert not result.accepted
    assert (delivery.status, delivery.error_code, delivery.attempts) == (
        "failed",
        "recipient_refused",
        1,
    )
    assert "a***@example.com" in delivery.error_message
    assert ADDRESS not in delivery.error_message
    assert FlakyMail.sent == []


def test_a_transient_failure_stays_queued_and_the_same_key_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    FlakyMail.failures = [smtplib.SMTPServerDisconnected(f"lost talking about {ADDRESS}")]
    with configure(BACKENDS={"email": FLAKY}, RATE_LIMIT=None):
        result = send(to(), notice(), channels=("email",), idempotency_key="k")
        [queued] = result.pending
        assert (queued.status, queued.error_code, queued.attempts) == (
            "queued",
            "SMTPServerDisconnected",
            1,
        )
        assert ADDRESS not in queued.error_message + caplog.text
        assert "a***@example.com" in caplog.text

        retried = send(to(), notice(), channels=("email",), idempotency_key="k")

    [delivery] = retried.deliveries
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    [sent] = FlakyMail.sent
    assert sent.extra_headers["Message-ID"] == delivery.provider_message_id
    assert delivery.provider_message_id == message_id("k:email", "localhost")


def test_a_connection_that_does_not_open_leaves_every_email_queued() -> None:
    FlakyMail.open_error = ConnectionRefusedError(111, "Connection refused")
    requests = [Request(to(f"u{i}@example.com"), notice(), ("email",), f"k{i}") for i in range(3)]
    with configure(BACKENDS={"email": FLAKY}, RATE_LIMIT=None):
        results = send_many(requests)

    deliveries = [d for r in results if isinstance(r, DispatchResult) for d in r.deliveries]
    assert [(d.status, d.error_code) for d in deliveries] == [
        ("queued", "ConnectionRefusedError")
    ] * 3


def test_one_failing_address_does_not_hide_the_others_outcomes() -> None:
    FlakyMail.failures = [None, smtplib.SMTPServerDisconnected("lost"), None]
    requests = [Request(to(f"u{i}@example.com"), notice(), ("email",), f"k{i}") for i in range(3)]
    with configure(BACKENDS={"email": FLAKY}, RATE_LIMIT=None):
        results = send_many(requests)

    statuses = [r.deliveries[0].status for r in results if isinstance(r, DispatchResult)]
    assert statuses == ["sent", "queued", "sent"]
    assert [m.to for m in FlakyMail.sent] == [["u0@example.com"], ["u2@example.com"]]


# --- anymail: the ESP's id, refusals and receipts ------------------------------------------


def test_anymail_s_message_id_is_the_provider_message_id(mailoutbox: list[DjangoEmail]) -> None:
    with configure(BACKENDS={"email": ANYMAIL_TEST}, RATE_LIMIT=None):
        [delivery] = send(to(), notice(), channels=("email",), idempotency_key="k").deliveries

    [message] = mailoutbox
    assert delivery.provider_message_id == str(message.anymail_status.message_id)  # type: ignore[attr-defined]
    assert delivery.provider_message_id != message.extra_headers["Message-ID"]
    assert message.anymail_test_params["metadata"] == {"notifications_alias": "email"}  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", ["rejected", "invalid"])
def test_an_address_the_esp_refuses_fails_for_good(status: str) -> None:
    FakeESP.statuses = {ADDRESS: status}  # "invalid": anymail reports it without raising
    with configure(BACKENDS={"email": ESP}, RATE_LIMIT=None):
        [delivery] = send(to(), notice(), channels=("email",), idempotency_key="k").deliveries

    assert (delivery.status, delivery.error_code) == ("failed", "recipient_refused")


def test_an_email_a_pre_send_receiver_cancels_fails_for_good(
    mailoutbox: list[DjangoEmail],
) -> None:
    def cancel(sender: Any, message: DjangoEmail, esp_name: str, **kwargs: Any) -> None:
        raise AnymailCancelSend("suppressed")

    pre_send.connect(cancel)
    try:
        with configure(BACKENDS={"email": ANYMAIL_TEST}, RATE_LIMIT=None):
            [delivery] = send(to(), notice(), channels=("email",), idempotency_key="k").deliveries
    finally:
        pre_send.disconnect(cancel)

    assert mailoutbox == []
    assert (delivery.status, delivery.error_code) == ("failed", "not_sent")


def event(event_type: str, message_id: str, **fields: Any) -> AnymailTrackingEvent:
    return AnymailTrackingEvent(event_type=event_type, message_id=message_id, **fields)


def sent_through_the_esp() -> Delivery:
    with configure(BACKENDS={"email": ESP}, RATE_LIMIT=None):
        [delivery] = send(to(), notice(), channels=("email",), idempotency_key="k").deliveries
    assert delivery.provider_message_id == f"esp-{ADDRESS}"
    return delivery


def test_a_delivered_event_is_a_receipt() -> None:
    delivery = sent_through_the_esp()
    at = dt.datetime(2027, 3, 1, 8, tzinfo=dt.UTC)
    metadata = {"notifications_alias": "email"}
    with configure(BACKENDS={"email": ESP}):
        tracking.send(
            sender=object,
            event=event("delivered", delivery.provider_message_id, timestamp=at, metadata=metadata),
            esp_name="Fake",
        )

    delivery.refresh_from_db()
    assert (delivery.status, delivery.delivered_at) == ("delivered", at)


def test_a_bounce_without_metadata_finds_its_delivery_by_the_esp_s_id() -> None:
    delivery = sent_through_the_esp()
    bounce = event(
        "bounced",
        delivery.provider_message_id,
        reject_reason="bounced",
        recipient=ADDRESS,
        description=f"550 {ADDRESS}: mailbox unavailable",
    )
    with configure(BACKENDS={"email": ESP}):
        tracking.send(sender=object, event=bounce, esp_name="Fake")

    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == ("undelivered", "bounced")
    assert delivery.error_message == "550 a***@example.com: mailbox unavailable"


def test_an_event_before_the_delivery_is_committed_is_kept_for_later() -> None:
    early = event("rejected", "esp-unknown", metadata={"notifications_alias": "email"})
    tracking.send(sender=object, event=early, esp_name="Fake")

    stored = UnmatchedReceipt.objects.get()
    assert (stored.backend_alias, stored.provider_message_id, stored.status) == (
        "email",
        "esp-unknown",
        "failed",
    )


@pytest.mark.parametrize(
    "other",
    [
        event("delivered", "not-ours"),  # another email of the project: no metadata, no delivery
        event("delivered", "esp-x", metadata={"notifications_alias": "no-such-alias"}),
        event("opened", f"esp-{ADDRESS}", metadata={"notifications_alias": "email"}),
    ],
)
def test_other_events_change_nothing(other: AnymailTrackingEvent) -> None:
    delivery = sent_through_the_esp()
    tracking.send(sender=object, event=other, esp_name="Fake")

    delivery.refresh_from_db()
    assert delivery.status == "sent"
    assert not UnmatchedReceipt.objects.exists()


def test_receipts_are_connected_only_where_anymail_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert tracking.has_listeners()
    tracking.disconnect(dispatch_uid="notifications.backends.email.on_tracking")
    try:
        monkeypatch.setitem(sys.modules, "anymail.signals", None)  # import fails
        connect_anymail_receipts()
        assert not tracking.has_listeners()
        monkeypatch.undo()
        connect_anymail_receipts()
        assert tracking.has_listeners()
    finally:
        connect_anymail_receipts()


# --- configuration -------------------------------------------------------------------------


def test_the_email_channel_needs_an_email_alias(mailoutbox: list[DjangoEmail]) -> None:
    sms_and_push = {
        "sms": {"BACKEND": "notifications.backends.locmem.SMSBackend"},
        "push": {"BACKEND": "notifications.backends.locmem.PushBackend"},
    }
    with configure(BACKENDS=sms_and_push, RATE_LIMIT=None):
        assert notifications_settings.CHANNELS == {"sms": "sms", "push": "push"}
        assert check_settings() == []
        result = send(to(), notice(), channels=("email",), idempotency_key="k")

    assert result.deliveries == []
    assert result.skipped == {"email": "not configured: NOTIFICATIONS['CHANNELS'] has no 'email'"}
    assert mailoutbox == []


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"backend": 1}, "['backend'] must be a string"),
        ({"from_email": ["a@b.example"]}, "['from_email'] must be a string"),
        ({"backend_options": "host=x"}, "['backend_options'] must be a dict"),
        ({"host": "smtp.example"}, "unknown keys ['host']"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, Any], text: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=text.replace("[", r"\[").replace("]", r"\]")):
        EmailBackend("email", **options)


@pytest.mark.skipif(django.VERSION < (6, 1), reason="settings.MAILERS came with Django 6.1")
def test_a_mailer_of_settings_mailers_sends_it(settings: Any) -> None:
    locmem_mailer = {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    flaky_mailer = {"BACKEND": "tests.notifications.test_backend_email.FlakyMail"}
    settings.MAILERS = {"default": locmem_mailer, "notices": flaky_mailer}
    backends = {"email": {**EMAIL, "OPTIONS": {"mailer": "notices"}}}
    with configure(BACKENDS=backends, RATE_LIMIT=None):
        [delivery] = send(to(), notice(), channels=("email",), idempotency_key="k").deliveries
        assert check_deploy_backends() == []

    [message] = FlakyMail.sent
    assert (message.to, delivery.status) == ([ADDRESS], "sent")
    settings.MAILERS = {"default": locmem_mailer, "notices": locmem_mailer}
    with configure(BACKENDS=backends):
        [warning] = check_deploy_backends()
    assert "django.core.mail.backends.locmem.EmailBackend" in warning.msg


@pytest.mark.skipif(django.VERSION >= (6, 1), reason="settings.MAILERS came with Django 6.1")
def test_a_mailer_needs_django_6_1() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"\['mailer'\] names a mailer"):
        EmailBackend("email", mailer="notices")


def test_backend_options_reach_the_mail_backend() -> None:
    options = {"backend": "django.core.mail.backends.smtp.EmailBackend"}
    backend = EmailBackend(
        "email", **options, backend_options={"host": "smtp.example", "port": 2525}
    )
    backend.open()
    connection = backend._connection
    assert (getattr(connection, "host", None), getattr(connection, "port", None)) == (
        "smtp.example",
        2525,
    )
    backend.close()
    assert backend._connection is None


@pytest.mark.parametrize(
    ("mail_backend", "warned"),
    [
        ("django.core.mail.backends.console.EmailBackend", True),
        ("django.core.mail.backends.smtp.EmailBackend", False),
        ("anymail.backends.test.EmailBackend", False),
    ],
)
def test_the_deploy_check_names_a_mail_backend_that_sends_nothing(
    mail_backend: str, warned: bool
) -> None:
    backends = {
        "sms": {"BACKEND": "myproject.SMS"},
        "push": {"BACKEND": "myproject.Push"},
        "email": {**EMAIL, "OPTIONS": {"backend": mail_backend}},
    }
    with configure(BACKENDS=backends):
        messages = check_deploy_backends()
    assert [m.msg for m in messages] == (
        [f"The 'email' channel uses {mail_backend}, which sends nothing to anyone."]
        if warned
        else []
    )


# --- recipients ----------------------------------------------------------------------------


@pytest.fixture
def user() -> User:
    return get_user_model().objects.create(username="ann", email=" Ann.Lee@EXAMPLE.com ")


def test_the_default_resolver_reads_the_user_s_email(user: User) -> None:
    recipient = resolve_recipient(user)  # no phone, no device: the address reaches them
    assert recipient.email == "Ann.Lee@example.com"
    assert "Ann.Lee" not in repr(recipient)


def test_get_notification_email_wins(user: User) -> None:
    vars(user).update(get_notification_email=lambda: "billing@example.com")  # auth.User has none
    assert resolve_recipient(user).email == "billing@example.com"


def test_an_invalid_email_names_the_attribute(user: User) -> None:
    user.email = "ann at example"
    with pytest.raises(InvalidRecipient, match=r"user\.email: Invalid email address a\*\*\*\.$"):
        resolve_recipient(user)


def test_an_address_alone_is_a_recipient_and_is_validated_before_anything_is_stored() -> None:
    key = to().key
    assert key.startswith("email:")
    assert "example" not in key
    with pytest.raises(InvalidRecipient, match="Invalid email address"):
        send(to("not-an-address"), notice(), channels=("email",), idempotency_key="k")
    assert not Delivery.objects.exists()


# --- the development backends --------------------------------------------------------------


def email_message() -> EmailMessage:
    return EmailMessage(to=ADDRESS, subject="Renews soon", body="Text", html="<p>Text</p>")


def test_the_console_backend_prints_the_subject_and_the_masked_address() -> None:
    stream = io.StringIO()
    with configure(
        BACKENDS={
            "email": {
                "BACKEND": "notifications.backends.console.EmailBackend",
                "OPTIONS": {"stream": stream},
            }
        },
        RATE_LIMIT=None,
    ):
        send(to(), notice(), channels=("email",), idempotency_key="k")

    printed = stream.getvalue()
    assert "to a***@example.com" in printed
    assert "Subject: Your plan, Ann" in printed
    assert "Your plan renews soon." in printed
    assert ADDRESS not in printed


def test_the_database_backend_stores_the_subject_and_text() -> None:
    with configure(
        BACKENDS={"email": {"BACKEND": "notifications.backends.database.EmailBackend"}},
        RATE_LIMIT=None,
    ):
        [delivery] = send(to(), notice(), channels=("email",), idempotency_key="k").deliveries

    stored = OutboxMessage.objects.get()
    assert (stored.channel, stored.title, stored.recipient) == (
        "email",
        "Your plan, Ann",
        "a***@example.com",
    )
    assert stored.body.startswith("Dear Ann")
    assert stored.delivery == delivery


def test_the_locmem_backend_keeps_the_message() -> None:
    with configure(
        BACKENDS={"email": {"BACKEND": "notifications.backends.locmem.EmailBackend"}},
        RATE_LIMIT=None,
    ):
        send(to(), notice(), channels=("email",), idempotency_key="k")

    [message] = locmem.outbox
    assert isinstance(message, EmailMessage)
    assert (message.to, message.subject) == (ADDRESS, "Your plan, Ann")
    assert "<p>Your plan renews soon.</p>" in message.html
    assert mail.outbox == []


def test_an_email_sent_outside_dispatch_has_no_message_id_but_goes_out(
    mailoutbox: list[DjangoEmail],
) -> None:
    [result] = EmailBackend("email").send_messages([email_message()])
    assert result.ok
    [message] = mailoutbox
    assert "Message-ID" not in message.extra_headers
