"""The admin: a window onto the records, never a way round the services.

Every row here is evidence (terms, consents, notices, the audit log) or state that only the
services change with an audit event, so the admin shows them and never edits them. Staff switch
auto-renewal off through an action that calls :func:`renewals.services.cancel_auto_renewal`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename, get_user_model
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .models import (
    AuditCheckpoint,
    AuditEvent,
    Consent,
    RenewalNotice,
    RenewalTerms,
    RevokedVia,
    Subscription,
)
from .models.terms import HASHED_FIELDS
from .services import cancel_auto_renewal

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class ReadOnlyMixin:
    """View permission only: no adding, changing or deleting from the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def hash_column(field: str, description: StrOrPromise) -> Callable[[Model], str]:
    """A list column showing the first 12 hex digits of a sha256 field."""

    @admin.display(description=description, ordering=field)
    def column(obj: Model) -> str:
        return f"{getattr(obj, field)[:12]}…"

    return column


class ConsentInline(ReadOnlyMixin, admin.TabularInline):
    model = Consent
    extra = 0
    show_change_link = True
    fields = ("granted_at", "terms_hash", "channel", "form_id", "revoked_at", "revoked_via")


class RenewalNoticeInline(ReadOnlyMixin, admin.TabularInline):
    model = RenewalNotice
    extra = 0
    show_change_link = True
    fields = ("rule_id", "renewal_at", "send_at", "window_closes_at", "status", "given_at")
    readonly_fields = ("given_at",)


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "service_name",
        "status",
        "auto_renew",
        "next_renewal_at",
        "policy",
        "gateway",
    )
    list_filter = ("status", "auto_renew", "policy", "gateway", "next_renewal_at")
    list_select_related = ("user", "terms")
    search_fields = ("gateway_customer_id", "gateway_subscription_id")
    inlines = (ConsentInline, RenewalNoticeInline)
    actions = ("switch_auto_renewal_off",)

    def get_search_fields(self, request: HttpRequest) -> list[str]:
        user = get_user_model()
        names = {user.USERNAME_FIELD, user.get_email_field_name()}
        return [*(f"user__{name}" for name in sorted(names)), *self.search_fields]

    @admin.display(description=_("service"), ordering="terms__service_name")
    def service_name(self, obj: Subscription) -> str:
        return obj.terms.service_name

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        """Switching auto-renewal off needs the change permission, which no form uses."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.action(description=_("Switch auto-renewal off"), permissions=["cancel"])
    def switch_auto_renewal_off(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        selected = list(queryset)
        changed = sum(
            cancel_auto_renewal(sub, actor=request.user, via=RevokedVia.ADMIN).changed
            for sub in selected
        )
        message = ngettext(
            "Auto-renewal switched off for %(changed)d of %(selected)d selected subscription.",
            "Auto-renewal switched off for %(changed)d of %(selected)d selected subscriptions.",
            len(selected),
        )
        self.message_user(
            request, message % {"changed": changed, "selected": len(selected)}, messages.SUCCESS
        )


@admin.register(RenewalTerms)
class RenewalTermsAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "service_name",
        "amount_display",
        "interval_display",
        "trial_days",
        "locale",
        hash_column("content_hash", _("content hash")),
        "created_at",
    )
    list_filter = ("currency", "interval", "locale")
    search_fields = ("service_name", "=content_hash", "=stripe_price_id")
    fields = (*HASHED_FIELDS, "content_hash", "created_at")


@admin.register(Consent)
class ConsentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "user",
        "subscription",
        hash_column("terms_hash", _("terms hash")),
        "policy",
        "channel",
        "granted_at",
        "revoked_at",
        "revoked_via",
    )
    list_filter = ("channel", "policy", "revoked_via", "granted_at")
    list_select_related = ("user", "subscription__terms")
    search_fields = ("=subscription__id", "=terms_hash", "form_id", "=ip_address")
    date_hierarchy = "granted_at"


@admin.register(RenewalNotice)
class RenewalNoticeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "subscription",
        "rule_id",
        "policy",
        "renewal_at",
        "send_at",
        "status",
        "attempts",
        "given_at",
    )
    list_filter = ("status", "rule_id", "policy", "renewal_at")
    list_select_related = ("subscription__terms",)
    search_fields = ("=subscription__id",)
    date_hierarchy = "renewal_at"


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "chain",
        "sequence",
        "kind",
        "subscription_id",
        "actor",
        "occurred_at",
        hash_column("hash", _("hash")),
    )
    list_filter = ("kind", "occurred_at")
    # One chain per subscription: too many for a filter list, so search a chain by its name.
    search_fields = ("=chain", "=subscription__id", "actor")
    date_hierarchy = "occurred_at"


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("sequence", "created_at", "chain_count", hash_column("hash", _("hash")))
    list_filter = ("created_at",)

    @admin.display(description=_("chains"))
    def chain_count(self, obj: AuditCheckpoint) -> int:
        return len(obj.heads)
