"""A user's subscription: its terms, rule pack, state machine and next renewal."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from ..exceptions import IllegalTransition
from .terms import RenewalTerms


class Status(models.TextChoices):
    PENDING = "pending", _("pending consent or first payment")
    TRIALING = "trialing", _("in free trial")
    ACTIVE = "active", _("active")
    PAST_DUE = "past_due", _("renewal payment failed")
    ON_HOLD = "on_hold", _("renewal held by the renewal gate")
    EXPIRED = "expired", _("ended at the end of its term")
    CANCELED = "canceled", _("ended")


#: status -> the statuses it may move to. Ended subscriptions stay ended: a new
#: subscription (with new consent) starts again.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.TRIALING, Status.ACTIVE, Status.EXPIRED, Status.CANCELED}),
    Status.TRIALING: frozenset(
        {Status.ACTIVE, Status.PAST_DUE, Status.ON_HOLD, Status.EXPIRED, Status.CANCELED}
    ),
    Status.ACTIVE: frozenset({Status.PAST_DUE, Status.ON_HOLD, Status.EXPIRED, Status.CANCELED}),
    Status.PAST_DUE: frozenset({Status.ACTIVE, Status.ON_HOLD, Status.EXPIRED, Status.CANCELED}),
    Status.ON_HOLD: frozenset({Status.ACTIVE, Status.EXPIRED, Status.CANCELED}),
    Status.EXPIRED: frozenset(),
    Status.CANCELED: frozenset(),
}

#: Statuses in which a renewal can still happen.
LIVE_STATUSES = frozenset({Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.ON_HOLD})
#: Subscriptions that no longer renew, whatever their auto-renewal flag says.
ENDED_STATUSES = frozenset({Status.EXPIRED, Status.CANCELED})


def validate_time_zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            _("%(value)r is not an IANA time zone."), params={"value": value}
        ) from None


class Subscription(models.Model):
    """One user's auto-renewing subscription and the facts the rules are checked against."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="renewal_subscriptions",
        verbose_name=_("user"),
    )
    terms = models.ForeignKey(
        "renewals.RenewalTerms",
        on_delete=models.PROTECT,
        related_name="subscriptions",
        verbose_name=_("terms agreed to"),
    )
    upcoming_terms = models.ForeignKey(
        "renewals.RenewalTerms",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("terms from the next renewal"),
        help_text=_("Set when the next renewal is charged at a new price."),
    )
    policy = models.CharField(_("rule pack"), max_length=32)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    auto_renew = models.BooleanField(_("auto-renewal on"), default=False)
    current_period_start = models.DateTimeField(_("current term started"), null=True, blank=True)
    next_renewal_at = models.DateTimeField(_("next renewal"), null=True, blank=True)
    trial_ends_at = models.DateTimeField(_("trial ends"), null=True, blank=True)
    held_renewal_at = models.DateTimeField(
        _("held renewal"),
        null=True,
        blank=True,
        help_text=_("The renewal the gate held at the gateway, released once it is lawful."),
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, validators=[validate_time_zone], default="UTC"
    )
    gateway = models.CharField(_("billing gateway"), max_length=32, default="local")
    gateway_customer_id = models.CharField(_("gateway customer id"), max_length=255, blank=True)
    gateway_subscription_id = models.CharField(
        _("gateway subscription id"), max_length=255, blank=True
    )
    gateway_sync_pending = models.BooleanField(
        _("gateway sync pending"),
        default=False,
        help_text=_("A change not yet confirmed by the gateway; the reconcile run retries it."),
    )
    gateway_event_created = models.DateTimeField(
        _("gateway state as of"),
        null=True,
        blank=True,
        help_text=_(
            "When the newest gateway event applied here was created: an older one is ignored."
        ),
    )
    held_invoice_id = models.CharField(
        _("held invoice id"),
        max_length=255,
        null=True,
        blank=True,
        help_text=_("The renewal's draft invoice the gate keeps from being charged (Stripe)."),
    )
    request_key = models.CharField(
        _("checkout key"),
        max_length=64,
        null=True,
        blank=True,
        unique=True,
        help_text=_("The checkout that started it: submitting that checkout again returns it."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        indexes = [models.Index(fields=["status", "next_renewal_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["gateway", "gateway_subscription_id"],
                condition=~models.Q(gateway_subscription_id=""),
                name="renewals_unique_gateway_subscription",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.terms.service_name} ({self.get_status_display()})"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    def can_transition_to(self, target: str) -> bool:
        return target in TRANSITIONS[self.status]

    def transition_to(self, target: str, **changes: Any) -> None:
        """Move to ``target`` (raising :class:`IllegalTransition`) and save with ``changes``.

        The caller holds the row lock (``select_for_update``) so two writers cannot both move it.
        """
        if not self.can_transition_to(target):
            raise IllegalTransition(self.status, target)
        self.status = target
        for name, value in changes.items():
            setattr(self, name, value)
        self.save(update_fields=["status", "updated_at", *changes])

    def renewal_terms(self) -> RenewalTerms:
        """The terms the next renewal is charged at."""
        return self.upcoming_terms or self.terms

    def local(self, instant: dt.datetime) -> dt.datetime:
        return instant.astimezone(self.zone)


__all__ = ["LIVE_STATUSES", "TRANSITIONS", "Status", "Subscription"]
