"""The admin: a window onto the records, never a way round the services.

Every row here is evidence (terms, consents, notices, the audit log) or state that only the
services change with an audit event, so the admin shows them and never edits them. Staff switch
auto-renewal off through an action that calls :func:`renewals.services.cancel_auto_renewal`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from notifications.models import Delivery

from .exceptions import WebhookEventFailed
from .models import (
    AuditCheckpoint,
    AuditEvent,
    Consent,
    ContractDeclaration,
    RenewalNotice,
    RenewalTerms,
    RevokedVia,
    StripeEvent,
    Subscription,
)
from .models.terms import HASHED_FIELDS
from .services import cancel_auto_renewal
from .services.health import (
    DEFAULT_DAYS,
    DEFAULT_STUCK_MINUTES,
    Section,
    health_report,
    missed_notices_q,
    overdue_notices_q,
)
from .services.stripe_events import needs_processing, reprocess_event
from .types import AuthenticatedHttpRequest

if TYPE_CHECKING:
    from django.db.models.options import Options
    from django_stubs_ext import StrOrPromise


class ReadOnlyMixin:
    """View permission only: no adding, changing or deleting from the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def may_change(request: HttpRequest, opts: Options[Any]) -> bool:
    """The user has the change permission of ``opts``' model, which actions that go through
    a service need: no form of these read-only pages uses it."""
    return request.user.has_perm(f"{opts.app_label}.{get_permission_codename('change', opts)}")


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
        return may_change(request, self.opts)

    @admin.action(description=_("Switch auto-renewal off"), permissions=["cancel"])
    def switch_auto_renewal_off(
        self, request: AuthenticatedHttpRequest, queryset: QuerySet[Subscription]
    ) -> None:
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
        "price",
        "trial_days",
        "locale",
        hash_column("content_hash", _("content hash")),
        "created_at",
    )
    list_filter = ("currency", "interval", "locale")
    search_fields = ("service_name", "=content_hash", "=stripe_price_id")
    fields = (*HASHED_FIELDS, "content_hash", "created_at")

    @admin.display(description=_("price"), ordering="amount")
    def price(self, obj: RenewalTerms) -> str:
        return obj.price_display


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


@admin.register(ContractDeclaration)
class ContractDeclarationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Declarations made through a statutory flow; an ``unmatched`` one names no contract on
    record, and staff find the consumer's contract and act through the subscription."""

    list_display = (
        "id",
        "received_at",
        "kind",
        "status",
        "policy",
        "contract_number",
        "subscription",
        "name",
    )
    list_filter = ("status", "kind", "policy", "received_at")
    list_select_related = ("subscription__terms",)
    search_fields = ("=contract_number", "name", "email", "phone", "=subscription__id")
    date_hierarchy = "received_at"


#: Columns of the health report that hold a record's id.
_LINKED_COLUMNS: dict[str, type[Model]] = {
    "subscription": Subscription,
    "notice": RenewalNotice,
    "delivery": Delivery,
}


class NeedsAttentionFilter(admin.SimpleListFilter):
    """Notices an operator must look at: missed ones whose renewal is still to come, and
    ones still to go out whose send time passed more than the health check's threshold ago."""

    title = _("needs attention")
    parameter_name = "attention"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> Any:
        return [("yes", _("Missed or overdue"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() != "yes":
            return queryset
        overdue = overdue_notices_q(timezone.now(), dt.timedelta(minutes=DEFAULT_STUCK_MINUTES))
        return queryset.filter(missed_notices_q() | overdue)


class HealthForm(forms.Form):
    days = forms.IntegerField(
        label=_("Renewals due within (days)"), min_value=0, max_value=366, initial=DEFAULT_DAYS
    )
    stuck_minutes = forms.IntegerField(
        label=_("Stuck after (minutes)"), min_value=1, initial=DEFAULT_STUCK_MINUTES
    )


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
    list_filter = (NeedsAttentionFilter, "status", "rule_id", "policy", "renewal_at")
    list_select_related = ("subscription__terms",)
    search_fields = ("=subscription__id",)
    date_hierarchy = "renewal_at"

    def get_urls(self) -> list[URLPattern]:
        health = path(
            "health/", self.admin_site.admin_view(self.health_view), name="renewals_health"
        )
        return [health, *super().get_urls()]

    def health_view(self, request: HttpRequest) -> HttpResponse:
        """The ``renewals_health`` report, for staff who may view notices."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = HealthForm(request.GET or None)
        values = form.cleaned_data if form.is_valid() else {}
        report = health_report(
            timezone.now(),
            days=values.get("days", DEFAULT_DAYS),
            stuck_minutes=values.get("stuck_minutes", DEFAULT_STUCK_MINUTES),
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Renewals health"),
            "form": form,
            "report": report,
            "tables": [(section, self._cells(section)) for section in report.sections],
        }
        return TemplateResponse(request, "admin/renewals/health.html", context)

    def _cells(self, section: Section) -> list[list[tuple[object, str | None]]]:
        """Each row's values, with a link to the admin page of the records it names."""
        return [
            [(value, self._link(column, value)) for column, value in row.items()]
            for row in section.rows
        ]

    def _link(self, column: str, value: object) -> str | None:
        model = _LINKED_COLUMNS.get(column)
        if model is None or value is None or not self.admin_site.is_registered(model):
            return None
        opts = model._meta
        return reverse(
            f"admin:{opts.app_label}_{opts.model_name}_change",
            args=[value],
            current_app=self.admin_site.name,
        )


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


class FailedFilter(admin.SimpleListFilter):
    """Events whose processing failed: kept for Stripe's retry or a re-process."""

    title = _("processing")
    parameter_name = "failed"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> Any:
        return [("yes", _("Failed")), ("no", _("Processed"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() is None:
            return queryset
        return queryset.filter(processed_at__isnull=self.value() == "yes")


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Stripe's webhook events as they came. Staff with the change permission re-process one
    that failed, or that came before its subscription was here."""

    list_display = (
        "event_id",
        "type",
        "object_id",
        "created",
        "received_at",
        "processed_at",
        "outcome",
        "attempts",
    )
    list_filter = (FailedFilter, "outcome", "type", "livemode")
    search_fields = ("=event_id", "=object_id")
    date_hierarchy = "created"
    actions = ("reprocess",)

    def has_reprocess_permission(self, request: HttpRequest) -> bool:
        return may_change(request, self.opts)

    @admin.action(description=_("Re-process"), permissions=["reprocess"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        due = [event for event in queryset if needs_processing(event)]
        failed = 0
        for event in due:
            try:
                reprocess_event(event)
            except WebhookEventFailed:
                failed += 1
        applied = len(due) - failed
        if applied or not failed:
            message = ngettext(
                "%(count)d Stripe event applied.", "%(count)d Stripe events applied.", applied
            )
            self.message_user(request, message % {"count": applied}, messages.SUCCESS)
        if failed:
            message = ngettext(
                "%(count)d Stripe event failed again; its error is on the event.",
                "%(count)d Stripe events failed again; each error is on its event.",
                failed,
            )
            self.message_user(request, message % {"count": failed}, messages.ERROR)
