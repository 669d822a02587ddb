"""A consumer's declaration that ends a contract: a statutory cancellation or a withdrawal."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..canonical import sha256_of
from ..conf import renewals_settings
from .subscription import Subscription


def contract_number(subscription: Subscription) -> str:
    """The number a consumer names a contract by: the subscription's id."""
    return str(subscription.pk)


class DeclarationKind(models.TextChoices):
    ORDINARY = "ordinary", _("ordinary cancellation")
    EXTRAORDINARY = "extraordinary", _("extraordinary cancellation for cause")
    WITHDRAWAL = "withdrawal", _("withdrawal from the contract")


class DeclarationStatus(models.TextChoices):
    UNMATCHED = "unmatched", _("no contract found for the details given")
    SCHEDULED = "scheduled", _("takes effect in the term that includes its date")
    APPLIED = "applied", _("in effect")
    REFUSED = "refused", _("refused: the contract cannot be withdrawn from")


class ContractDeclaration(models.Model):
    """What the consumer declared, exactly as submitted, and what became of it.

    The content fields are never changed after the insert; only ``status``, ``applied_at``
    and (once matched) ``subscription`` move, each step recorded in the audit log.
    """

    policy = models.CharField(_("rule pack"), max_length=32)
    kind = models.CharField(_("kind"), max_length=16, choices=DeclarationKind.choices)
    status = models.CharField(_("status"), max_length=16, choices=DeclarationStatus.choices)
    received_at = models.DateTimeField(_("received"))
    applied_at = models.DateTimeField(_("took effect"), null=True, blank=True)
    declarant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("signed-in user who declared it"),
    )
    subscription = models.ForeignKey(
        "renewals.Subscription",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="declarations",
        verbose_name=_("contract"),
    )
    name = models.CharField(_("full name"), max_length=200)
    email = models.EmailField(_("email address"), blank=True)
    phone = models.CharField(_("phone number"), max_length=32, blank=True)
    contract_number = models.CharField(_("contract number given"), max_length=20)
    reason = models.TextField(_("reason given"), blank=True)
    ends_on = models.DateField(
        _("end requested on"),
        null=True,
        blank=True,
        help_text=_("Empty: at the earliest possible date."),
    )

    class Meta:
        verbose_name = _("contract declaration")
        verbose_name_plural = _("contract declarations")
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["status", "received_at"])]

    def __str__(self) -> str:
        return gettext("%(kind)s of contract %(number)s (%(status)s)") % {
            "kind": capfirst(self.get_kind_display()),
            "number": self.contract_number,
            "status": self.get_status_display(),
        }

    @property
    def is_withdrawal(self) -> bool:
        return self.kind == DeclarationKind.WITHDRAWAL

    @property
    def holders_contract(self) -> Subscription | None:
        """The contract, if the signed-in declarant holds it: they may see what became of it."""
        contract = self.subscription
        if contract is not None and self.declarant_id is not None:
            return contract if contract.user_id == self.declarant_id else None
        return None

    @property
    def zone(self) -> ZoneInfo:
        """The zone its times are shown in: the contract's, where the declarant holds it;
        else the site's, so a receipt never tells a stranger where a contract's holder is."""
        contract = self.holders_contract
        return contract.zone if contract else ZoneInfo(renewals_settings.time_zone_name)

    def local(self, instant: dt.datetime) -> dt.datetime:
        return instant.astimezone(self.zone)

    def content(self) -> dict[str, Any]:
        """What the consumer declared, as the audit log's ``content_sha256`` covers it."""
        return {
            name: getattr(self, name)
            for name in (
                "policy",
                "kind",
                "received_at",
                "name",
                "email",
                "phone",
                "contract_number",
                "reason",
                "ends_on",
            )
        }

    def content_hash(self) -> str:
        return sha256_of(self.content())
