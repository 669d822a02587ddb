"""Admin for devices (tokens masked), and read-only: deliveries (they are evidence) and the
messages the database backends stored."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .models import Delivery, Device, OutboxMessage
from .phone import mask_token


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ["user", "platform", "provider", "masked_token", "active", "last_seen_at"]
    list_filter = ["platform", "provider", "active"]
    search_fields = [f"user__{get_user_model().USERNAME_FIELD}"]
    fields = ["user", "platform", "provider", "masked_token", "active", "last_seen_at"]
    readonly_fields = ["user", "platform", "provider", "masked_token", "last_seen_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # apps register devices with the token their client reports

    @admin.display(description=_("token"))
    def masked_token(self, device: Device) -> str:
        return mask_token(device.token)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that record what happened: shown, never added, changed or deleted by hand."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["pk", "channel", "backend_alias", "recipient", "template_key", "status"]
    list_filter = ["channel", "status", "backend_alias"]
    search_fields = ["reference", "idempotency_key", "provider_message_id"]
    date_hierarchy = "queued_at"


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    """What the database backends "sent": a demo reads its reminders here."""

    list_display = ["created_at", "channel", "recipient", "title", "body", "url", "delivery_link"]
    list_filter = ["channel"]
    search_fields = ["body", "title"]
    date_hierarchy = "created_at"
    list_select_related = ["delivery"]

    @admin.display(description=_("delivery"))
    def delivery_link(self, message: OutboxMessage) -> str:
        if message.delivery_id is None:
            return "-"
        url = reverse("admin:notifications_delivery_change", args=[message.delivery_id])
        return format_html('<a href="{}">{}</a>', url, message.delivery)
