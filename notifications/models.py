"""Devices that receive push notifications, and one record per message handed to a backend."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .phone import mask_token


class Device(models.Model):
    """A push token of one app install, registered by the client."""

    class Platform(models.TextChoices):
        IOS = "ios", "iOS"
        ANDROID = "android", "Android"
        WEB = "web", _("Web")
        HARMONY = "harmony", "HarmonyOS"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="notification_devices",
        verbose_name=_("user"),
    )
    platform = models.CharField(_("platform"), max_length=16, choices=Platform.choices)
    provider = models.CharField(_("provider"), max_length=32, help_text=_("fcm, apns, jpush …"))
    token = models.CharField(_("token"), max_length=512, unique=True)
    active = models.BooleanField(_("active"), default=True)
    last_seen_at = models.DateTimeField(_("last seen at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")

    def __str__(self) -> str:
        return f"{self.platform} {mask_token(self.token)}"


class Delivery(models.Model):
    """One message on one channel (and, for push, one device), from queued to a final status.

    Only :func:`notifications.status.record_status` changes ``status``; a final status never
    moves, and ``expired`` only to a final status a late receipt reports. ``recipient`` is
    masked: no full phone number or token is stored here.
    """

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        PUSH = "push", _("Push")
        EMAIL = "email", _("Email")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENT = "sent", _("sent")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")
        UNDELIVERED = "undelivered", _("undelivered")
        EXPIRED = "expired", _("expired")

    #: Statuses that never change. ``expired`` is not among them: a receipt that comes after
    #: ``RECEIPT_TIMEOUT`` still records what happened.
    FINAL_STATUSES: ClassVar[frozenset[str]] = frozenset(
        {Status.DELIVERED, Status.FAILED, Status.UNDELIVERED}
    )

    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    backend_alias = models.CharField(_("backend alias"), max_length=64)
    recipient = models.CharField(_("recipient (masked)"), max_length=64)
    #: ``user:<pk>`` or ``phone:<keyed hash>``: groups a person's deliveries for the rate limit.
    recipient_key = models.CharField(_("recipient key"), max_length=80)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notification_deliveries",
        verbose_name=_("user"),
    )
    device = models.ForeignKey(
        Device,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        verbose_name=_("device"),
    )
    template_key = models.CharField(_("template"), max_length=100)
    locale = models.CharField(_("locale"), max_length=16)
    #: The caller's key: every delivery of one ``dispatch.send`` call shares it.
    dispatch_key = models.CharField(_("dispatch key"), max_length=200, db_index=True)
    #: ``<dispatch_key>:<channel>[:<device pk>]``; the unique index makes sending idempotent.
    idempotency_key = models.CharField(_("idempotency key"), max_length=255, unique=True)
    reference = models.CharField(_("reference"), max_length=200, blank=True, db_index=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    queued_at = models.DateTimeField(_("queued at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)
    undelivered_at = models.DateTimeField(_("undelivered at"), null=True, blank=True)
    expired_at = models.DateTimeField(_("expired at"), null=True, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=200, blank=True)
    error_code = models.CharField(_("error code"), max_length=100, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        indexes = [
            models.Index(
                fields=["backend_alias", "provider_message_id"], name="notif_delivery_provider_id"
            ),
            models.Index(fields=["recipient_key", "queued_at"], name="notif_delivery_recipient"),
            models.Index(fields=["status", "sent_at"], name="notif_delivery_status_sent"),
        ]

    def __str__(self) -> str:
        return gettext("%(channel)s to %(recipient)s: %(status)s") % {
            "channel": self.get_channel_display(),
            "recipient": self.recipient,
            "status": self.get_status_display(),
        }

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES


class UnmatchedReceipt(models.Model):
    """A receipt whose message has no delivery yet (it came before the sending transaction
    committed); the periodic sweep applies it once the delivery appears."""

    backend_alias = models.CharField(_("backend alias"), max_length=64)
    provider_message_id = models.CharField(_("provider message id"), max_length=200)
    status = models.CharField(_("status"), max_length=16, choices=Delivery.Status.choices)
    at = models.DateTimeField(_("at"), null=True, blank=True)
    error_code = models.CharField(_("error code"), max_length=100, blank=True)
    error_message = models.TextField(_("error message"), blank=True)
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("unmatched receipt")
        verbose_name_plural = _("unmatched receipts")
        indexes = [
            models.Index(
                fields=["backend_alias", "provider_message_id"], name="notif_unmatched_provider_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.backend_alias} {self.provider_message_id}: {self.status}"


class OutboxMessage(models.Model):
    """A message "sent" by the database backend, so a demo page can show the phone's inbox."""

    channel = models.CharField(_("channel"), max_length=8, choices=Delivery.Channel.choices)
    backend_alias = models.CharField(_("backend alias"), max_length=64)
    recipient = models.CharField(_("recipient (masked)"), max_length=64)
    title = models.CharField(_("title"), max_length=200, blank=True)
    body = models.TextField(_("body"))
    url = models.URLField(_("link a tap opens"), max_length=500, blank=True)
    provider_message_id = models.CharField(_("message id"), max_length=64, unique=True)
    delivery = models.ForeignKey(
        Delivery,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="outbox_messages",
        verbose_name=_("delivery"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return gettext("%(channel)s to %(recipient)s") % {
            "channel": self.get_channel_display(),
            "recipient": self.recipient,
        }
