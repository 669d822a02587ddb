"""Stripe webhook events, kept with what became of them."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class EventOutcome(models.TextChoices):
    APPLIED = "applied", _("applied")
    STALE = "stale", _("older than the state already applied")
    IGNORED = "ignored", _("nothing to do for this type")
    UNKNOWN_SUBSCRIPTION = "unknown_subscription", _("about a subscription not in this database")


class StripeEvent(models.Model):
    """One verified Stripe event: stored once (its id is unique, so a replay changes
    nothing), processed in the transaction that marks it processed, or kept with the error
    that stopped it for Stripe's retry or ``renewals_stripe_reprocess``."""

    event_id = models.CharField(_("event id"), max_length=255, unique=True)
    type = models.CharField(_("type"), max_length=100)
    api_version = models.CharField(_("API version"), max_length=64, blank=True)
    livemode = models.BooleanField(_("live mode"))
    object_id = models.CharField(
        _("Stripe object"),
        max_length=255,
        blank=True,
        help_text=_("The id of the object the event is about (empty for an upcoming invoice)."),
    )
    created = models.DateTimeField(_("created at Stripe"))
    payload = models.JSONField(_("payload"))
    received_at = models.DateTimeField(_("received"))
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=32, choices=EventOutcome.choices, blank=True
    )
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveIntegerField(_("processing attempts"), default=0)

    class Meta:
        verbose_name = _("Stripe event")
        verbose_name_plural = _("Stripe events")
        ordering = ["-created", "-pk"]
        indexes = [
            models.Index(
                fields=["created"],
                condition=models.Q(processed_at__isnull=True),
                name="renewals_stripe_unprocessed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"

    @property
    def data_object(self) -> dict[str, Any]:
        """The Stripe object the event carries (``data.object``)."""
        obj: dict[str, Any] = self.payload["data"]["object"]
        return obj


__all__ = ["EventOutcome", "StripeEvent"]
