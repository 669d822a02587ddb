"""Email through Django's own mail backends: SMTP, or any of django-anymail's ESPs.

The connection is Django's default mailer (``get_connection()``; from Django 6.1 a mailer of
``settings.MAILERS``), or a mail backend class the alias names. Each message goes out as an
``EmailMultiAlternatives`` (the text, with the HTML as an alternative) in its own
``send_messages()`` call on one connection per batch, so that one refused address does not
hide the outcome of the others. Its ``Message-ID`` is derived from
the delivery's idempotency key: a copy sent again after a crash carries the same id, which
mail systems use to tell copies apart. Under django-anymail the ESP's message id (from
``message.anymail_status``) is recorded as the provider message id, an address the ESP refuses
fails the delivery for good, and :func:`on_tracking`, connected to ``anymail.signals.tracking``
when anymail is installed, turns the ESP's delivery events into receipts.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
import traceback
from collections.abc import Mapping, Sequence
from email.utils import parseaddr
from typing import Any, Literal, Protocol

import django
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.utils import DNS_NAME
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string

from ..conf import notifications_settings
from ..email_address import mask_address, mask_email
from ..messages import EmailMessage, Receipt, SendResult
from ..models import Delivery
from ..status import apply_receipt
from . import base

logger = logging.getLogger("notifications.backends")

#: The anymail ``metadata`` key that names the alias a message was sent by; ESPs echo
#: metadata in their tracking events, so a receipt finds its alias even before the delivery
#: is committed.
ALIAS_METADATA = "notifications_alias"
#: anymail's statuses of an address the ESP will not send to.
_REFUSED = frozenset({"rejected", "invalid"})
#: The backend of a mailer of ``settings.MAILERS`` that names none (Django 6.1).
DJANGO_DEFAULT_MAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
ReceiptStatus = Literal["sent", "delivered", "undelivered", "failed"]
#: anymail tracking event types that are receipts, and the status each reports.
RECEIPT_STATUSES: dict[str, ReceiptStatus] = {
    "delivered": "delivered",
    "bounced": "undelivered",
    "rejected": "failed",
    "failed": "failed",
}


def message_id(idempotency_key: str, domain: str) -> str:
    """The ``Message-ID`` of the delivery with ``idempotency_key``: the same for every copy,
    keyed with ``SECRET_KEY`` so that it does not show the key."""
    digest = salted_hmac("notifications.email.message_id", idempotency_key, algorithm="sha256")
    return f"<{digest.hexdigest()[:40]}@{domain}>"


class _Email(EmailMultiAlternatives):
    """An email with the attributes django-anymail reads and sets; other backends ignore them."""

    metadata: dict[str, str]
    anymail_status: Any


class EmailBackend(base.EmailBackend):
    """Sends through Django's mail.

    OPTIONS, all optional: ``backend``, the dotted path of a Django mail backend class, with
    ``backend_options``, keyword arguments for it (an SMTP host, an ESP's API key); or, from
    Django 6.1, ``mailer``, an alias of ``settings.MAILERS``; else Django's default mailer.
    ``from_email`` defaults to ``settings.DEFAULT_FROM_EMAIL``.
    """

    option_names = frozenset({"backend", "backend_options", "mailer", "from_email"})
    batch_size = 100
    thread_safe = True

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)
        name = f"NOTIFICATIONS['BACKENDS'][{alias!r}]['OPTIONS']"
        for key in ("backend", "mailer", "from_email"):
            if not isinstance(options.get(key, ""), str):
                raise ImproperlyConfigured(f"{name}[{key!r}] must be a string.")
        extra = options.get("backend_options", {})
        if not (isinstance(extra, Mapping) and all(isinstance(k, str) for k in extra)):
            raise ImproperlyConfigured(
                f"{name}['backend_options'] must be a dict of keyword arguments."
            )
        if options.get("mailer") and (options.get("backend") or django.VERSION < (6, 1)):
            raise ImproperlyConfigured(
                f"{name}['mailer'] names a mailer of settings.MAILERS (Django 6.1 and later), "
                "and goes without 'backend'."
            )
        self._connection: BaseEmailBackend | None = None

    @property
    def mail_backend(self) -> str:
        """The dotted path of the Django mail backend this alias sends through."""
        return mail_backend_path(self.options)

    def open(self) -> None:
        """Make the mail connection that :meth:`send_messages` shares until :meth:`close`."""
        self._mail_connection()

    def _mail_connection(self) -> BaseEmailBackend:
        """The mail backend, made the first time (it connects on the first message)."""
        if self._connection is None:
            path = self.options.get("backend")
            if path:
                self._connection = import_string(path)(**self.options.get("backend_options", {}))
            else:
                self._connection = _mailer(self.options.get("mailer") or "default")
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()
            except Exception:  # the messages' outcomes stand: nothing to retry
                logger.warning("Closing the mail connection of %r failed.", self.alias)

    def send_messages(self, messages: Sequence[EmailMessage]) -> list[SendResult]:
        opened_here = self._connection is None
        connection = self._mail_connection()
        try:
            try:
                connection.open()
            except Exception as exc:
                logger.warning(
                    "Backend %r could not open its mail connection; %d email(s) stay queued: %s",
                    self.alias,
                    len(messages),
                    exc,
                )
                return [SendResult.retry(type(exc).__name__, str(exc))] * len(messages)
            return [self._send(connection, message) for message in messages]
        finally:
            if opened_here:
                self.close()

    def build(self, message: EmailMessage) -> _Email:
        """The Django email of ``message``."""
        from_email = self.options.get("from_email") or settings.DEFAULT_FROM_EMAIL
        headers = {"Auto-Submitted": "auto-generated"}  # RFC 3834: no auto-replies
        key = message.metadata.get("idempotency_key")
        if key:
            domain = parseaddr(from_email)[1].rpartition("@")[2] or str(DNS_NAME)
            headers["Message-ID"] = message_id(key, domain)
        email = _Email(message.subject, message.body, from_email, [message.to], headers=headers)
        email.attach_alternative(message.html, "text/html")
        email.metadata = {ALIAS_METADATA: self.alias}
        return email

    def _send(self, connection: BaseEmailBackend, message: EmailMessage) -> SendResult:
        email = self.build(message)
        try:
            sent = connection.send_messages([email])
        except Exception as exc:
            return self._failure(message, email, exc)
        if _refused_by_esp(email):
            return SendResult.permanent_failure("recipient_refused", _status_text(email))
        if not sent:
            return SendResult.permanent_failure(
                "not_sent", "The mail backend sent nothing (a pre_send receiver cancelled it?)."
            )
        return SendResult.sent(_provider_id(email))

    def _failure(self, message: EmailMessage, email: _Email, exc: Exception) -> SendResult:
        """The result of a send that raised ``exc``: a refused address fails for good, anything
        else is retried (logged with its traceback, the address masked)."""
        text = mask_address(f"{type(exc).__name__}: {exc}", message.to)
        if isinstance(exc, smtplib.SMTPRecipientsRefused) or _refused_by_esp(email):
            return SendResult.permanent_failure("recipient_refused", text)
        logger.warning(
            "Backend %r could not send an email to %s; it stays queued.\n%s",
            self.alias,
            mask_email(message.to),
            mask_address("".join(traceback.format_exception(exc)), message.to),
        )
        return SendResult.retry(type(exc).__name__, text)


def mail_backend_path(options: Mapping[str, Any]) -> str:
    """The dotted path of the Django mail backend an email alias's ``options`` send through."""
    path: str = options.get("backend") or ""
    if not path:
        mailers = getattr(settings, "MAILERS", None)  # Django 6.1 and later
        mailer = options.get("mailer") or "default"
        if mailers is None:
            path = settings.EMAIL_BACKEND
        else:
            path = mailers.get(mailer, {}).get("BACKEND", DJANGO_DEFAULT_MAIL_BACKEND)
    return path


def _mailer(alias: str) -> BaseEmailBackend:
    """A connection of Django's mailer ``alias``: ``settings.MAILERS`` from Django 6.1 (its
    ``"default"`` falls back to ``EMAIL_BACKEND``), ``get_connection()`` before."""
    try:
        from django.core.mail import mailers
    except ImportError:  # Django 5.2
        return get_connection()
    return mailers[alias]


def _refused_by_esp(email: _Email) -> bool:
    status = getattr(getattr(email, "anymail_status", None), "status", None)
    if not status:
        return False
    return set(status) <= _REFUSED


def _status_text(email: _Email) -> str:
    return f"The ESP refused the address: {sorted(email.anymail_status.status)}."


def _provider_id(email: _Email) -> str:
    """anymail's ESP message id where it set one, else the ``Message-ID`` header."""
    esp_id = getattr(getattr(email, "anymail_status", None), "message_id", None)
    if esp_id is not None and not isinstance(esp_id, set):
        return str(esp_id)
    return str(email.extra_headers.get("Message-ID", ""))


class TrackingEvent(Protocol):
    """What :func:`on_tracking` reads of an ``anymail.signals.AnymailTrackingEvent``."""

    event_type: str
    timestamp: dt.datetime | None
    message_id: Any
    metadata: Mapping[str, Any] | None
    recipient: str | None
    reject_reason: str | None
    description: str | None
    mta_response: str | None


def on_tracking(sender: Any, event: TrackingEvent, esp_name: str, **kwargs: Any) -> None:
    """``anymail.signals.tracking`` receiver: a delivered, bounced, rejected or failed event
    of an email this app sent becomes a receipt of its delivery.

    The alias comes from the message's metadata, else from the delivery with the ESP's
    message id; events of other emails (a password reset) are ignored.
    """
    status = RECEIPT_STATUSES.get(event.event_type)
    if status is None or not event.message_id:
        return
    provider_id = str(event.message_id)
    alias = (event.metadata or {}).get(ALIAS_METADATA)
    if alias not in notifications_settings.BACKENDS:
        alias = (
            Delivery.objects.filter(channel=Delivery.Channel.EMAIL, provider_message_id=provider_id)
            .values_list("backend_alias", flat=True)
            .first()
        )
    if alias is None:
        return
    failed = status != "delivered"
    text = (event.description or event.mta_response or "") if failed else ""
    apply_receipt(
        backend_alias=alias,
        receipt=Receipt(
            provider_message_id=provider_id,
            status=status,
            at=event.timestamp,
            error_code=(event.reject_reason or event.event_type) if failed else "",
            error_message=mask_address(text, event.recipient or ""),
        ),
    )


def connect_anymail_receipts() -> None:
    """Connect :func:`on_tracking` to anymail's tracking signal, if anymail is installed."""
    try:
        from anymail.signals import tracking
    except ImportError:
        return
    tracking.connect(on_tracking, dispatch_uid="notifications.backends.email.on_tracking")
