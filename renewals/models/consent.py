"""Consent to auto-renewal: insert-only evidence of an affirmative, separate act."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..canonical import sha256_of
from .base import InsertOnly


class ConsentChannel(models.TextChoices):
    WEB = "web", _("web")
    APP = "app", _("mobile app")
    API = "api", _("API")
    PHONE = "phone", _("telephone")
    ADMIN = "admin", _("staff on the user's behalf")


class RevokedVia(models.TextChoices):
    ONE_CLICK_LINK = "one_click_link", _("one-click link in a notice")
    MANAGE_PAGE = "manage_page", _("manage page")
    API = "api", _("API")
    CANCELLATION_BUTTON = "cancellation_button", _("statutory cancellation button")
    WITHDRAWAL = "withdrawal", _("withdrawal function")
    ADMIN = "admin", _("admin")
    GATEWAY = "gateway", _("billing gateway")
    SUPPORT = "support", _("customer support")
    SYSTEM = "system", _("system")


class Consent(InsertOnly):
    """The user agreed to auto-renewal on these terms, and how we know.

    Rows are never updated except once, to record revocation (switching auto-renewal off),
    which :func:`renewals.services.cancel_auto_renewal` does with a guarded update.
    """

    subscription = models.ForeignKey(
        "renewals.Subscription",
        on_delete=models.PROTECT,
        related_name="consents",
        verbose_name=_("subscription"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="renewal_consents",
        verbose_name=_("user"),
    )
    terms = models.ForeignKey(
        "renewals.RenewalTerms",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("terms agreed to"),
    )
    terms_hash = models.CharField(_("terms hash agreed to"), max_length=64)
    policy = models.CharField(_("rule pack"), max_length=32)
    granted_at = models.DateTimeField(_("granted"))
    channel = models.CharField(_("channel"), max_length=16, choices=ConsentChannel.choices)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.TextField(_("user agent"), blank=True)
    locale = models.CharField(_("locale"), max_length=16, blank=True)
    form_id = models.CharField(
        _("form or screen"), max_length=200, help_text=_("Which form or UI took the consent.")
    )
    control_initially_unticked = models.BooleanField(_("control started unticked"))
    disclosure_text = models.TextField(_("disclosure shown"), blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_via = models.CharField(
        _("revoked through"), max_length=32, choices=RevokedVia.choices, blank=True
    )
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("revoked by"),
    )
    revoke_reason = models.TextField(_("reason given"), blank=True)

    immutable_message = _("Consent records are insert-only.")

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["subscription", "revoked_at"])]

    def __str__(self) -> str:
        values = {"pk": self.pk, "hash": self.terms_hash[:12]}
        if self.revoked_at:
            return gettext("Consent #%(pk)s to terms %(hash)s… (revoked)") % values
        return gettext("Consent #%(pk)s to terms %(hash)s… (active)") % values

    def evidence_content(self) -> dict[str, Any]:
        """The evidence of this consent, as the audit chain's ``evidence_sha256`` covers it."""
        return {
            name: getattr(self, name)
            for name in (
                "terms_hash",
                "policy",
                "granted_at",
                "channel",
                "ip_address",
                "user_agent",
                "locale",
                "form_id",
                "control_initially_unticked",
                "disclosure_text",
            )
        }

    def evidence_hash(self) -> str:
        return sha256_of(self.evidence_content())
