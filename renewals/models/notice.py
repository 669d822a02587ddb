"""A notice the rules require before one renewal, with the window it must go out in."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.utils.translation import gettext, pgettext
from django.utils.translation import gettext_lazy as _

from notifications.models import Delivery


class NoticeStatus(models.TextChoices):
    PLANNED = "planned", _("planned")
    SENDING = "sending", _("being sent")
    SENT = "sent", _("accepted by a provider")
    DELIVERED = "delivered", _("delivered")
    FAILED = "failed", _("failed")
    WITHDRAWN = "withdrawn", _("withdrawn: the renewal will not happen")
    MISSED = "missed", _("missed: not out before the window closed")


#: Statuses in which the notice is still to go out.
PENDING_NOTICE_STATUSES = frozenset({NoticeStatus.PLANNED, NoticeStatus.SENDING})


class RenewalNotice(models.Model):
    subscription = models.ForeignKey(
        "renewals.Subscription",
        on_delete=models.PROTECT,
        related_name="notices",
        # The unique (subscription, renewal_at, rule_id) index serves every look-up by
        # subscription; a second index would only slow planning's inserts.
        db_index=False,
        verbose_name=_("subscription"),
    )
    renewal_at = models.DateTimeField(_("renewal it announces"))
    policy = models.CharField(_("rule pack"), max_length=32)
    rule_id = models.CharField(_("notice rule"), max_length=64)
    window_opens_at = models.DateTimeField(_("window opens"))
    window_closes_at = models.DateTimeField(_("window closes"))
    send_at = models.DateTimeField(_("planned send"))
    time_zone = models.CharField(
        _("time zone"), max_length=64, help_text=_("The user's zone the send hour was chosen in.")
    )
    channels = models.JSONField(_("channels"), default=list)
    strategy = models.CharField(_("channel strategy"), max_length=16, default="all")
    delivered_when = models.CharField(
        _("counts as given when"),
        max_length=16,
        default="accepted",
        help_text=_("'accepted' by a provider, or 'delivered' by a receipt."),
    )
    message = models.CharField(
        _("message template"),
        max_length=64,
        default="renewals.reminder",
        help_text=_("The key of the message template the notice is sent with."),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=NoticeStatus.choices, default=NoticeStatus.PLANNED
    )
    fallback_channels = models.JSONField(
        _("fallback channels"),
        default=list,
        blank=True,
        help_text=_("Tried when the window nears its close and the notice is not yet given."),
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    lease_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    #: How many times the notice was sent afresh after a receipt took its evidence back.
    resends = models.PositiveIntegerField(_("resends"), default=0)
    fallback_at = models.DateTimeField(_("fallback tried"), null=True, blank=True)
    #: channel -> why the user could not be reached on it ("no phone number" ...).
    skipped = models.JSONField(_("channels skipped"), default=dict, blank=True)
    sent_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    missed_at = models.DateTimeField(_("missed"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("planned at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("renewal notice")
        verbose_name_plural = _("renewal notices")
        ordering = ["renewal_at", "rule_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "renewal_at", "rule_id"],
                name="renewals_notice_once_per_renewal_and_rule",
            ),
            models.CheckConstraint(
                condition=models.Q(window_opens_at__lte=models.F("window_closes_at")),
                name="renewals_notice_window_ordered",
            ),
        ]
        # (status, send_at) serves the sweep's claim: status in (planned, sending), send_at
        # passed, earliest first.
        indexes = [models.Index(fields=["status", "send_at"])]

    def __str__(self) -> str:
        return gettext("%(rule)s before the renewal of %(renewal)s UTC (%(status)s)") % {
            "rule": self.rule_id,
            "renewal": f"{self.renewal_at:%Y-%m-%d %H:%M}",
            "status": self.get_status_display(),
        }

    @property
    def channel_labels(self) -> list[str]:
        """The channels it goes out on, named as users read them ("SMS", "Push")."""
        return [str(Delivery.Channel(channel).label) for channel in self.channels]

    @property
    def channels_display(self) -> str:
        """:attr:`channel_labels` listed as the active language lists words ("SMS, Push")."""
        return pgettext("list separator", ", ").join(self.channel_labels)

    @property
    def given_at(self) -> dt.datetime | None:
        """When the notice counts as given under its rule, or ``None``."""
        return self.delivered_at if self.delivered_when == "delivered" else self.sent_at

    def given_in_window(self) -> bool:
        """Was the notice given inside its window, as the renewal gate requires?"""
        given = self.given_at
        return given is not None and self.window_opens_at <= given <= self.window_closes_at
