"""JPush (极光推送) Push API v3, with the Android vendor channels it relays to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..exceptions import MessageError
from ..messages import PushMessage, SendResult
from ._http import (
    HTTP_OPTIONS,
    ErrorTable,
    HTTPBackend,
    accepted,
    is_transient,
    json_body,
    json_object,
)
from .base import PushBackend

API = "https://api.jpush.cn/v3/push"
VENDORS = frozenset({"xiaomi", "huawei", "honor", "oppo", "vivo", "meizu", "fcm", "hmos", "nio"})
DISTRIBUTIONS = frozenset({"jpush", "ospush", "secondary_push", "first_ospush"})
#: Our platform names to JPush's.
PLATFORMS = {"android": "android", "ios": "ios", "harmony": "hmos"}

ERRORS = ErrorTable(
    retry=frozenset({"1000", "1030", "2002", "2008"}),  # internal, timeout, rate limits
    backend=frozenset({"1004", "1008"}),  # authentication failed; invalid app_key
    token_invalid=frozenset({"1011"}),  # no push target: registration id unknown or inactive
)


def check_vendor_channels(alias: str, channels: Mapping[str, Any]) -> None:
    """Refuse unknown vendors and distributions in OPTION ``vendor_channels``."""
    key = f"NOTIFICATIONS['BACKENDS'][{alias!r}]['OPTIONS']['vendor_channels']"
    for vendor, settings in channels.items():
        if vendor not in VENDORS or not isinstance(settings, Mapping):
            raise ImproperlyConfigured(
                f"{key}[{vendor!r}]: use a dict per vendor among {sorted(VENDORS)}."
            )
        distribution = settings.get("distribution")
        if distribution is not None and distribution not in DISTRIBUTIONS:
            raise ImproperlyConfigured(
                f"{key}[{vendor!r}]['distribution'] = {distribution!r}; "
                f"use one of {sorted(DISTRIBUTIONS)}."
            )


class JPushBackend(HTTPBackend[PushMessage], PushBackend):
    """Sends one notification per ``POST /v3/push`` to one registration id.

    OPTION ``vendor_channels`` is passed as ``options.third_party_channel`` of Android pushes,
    e.g. ``{"huawei": {"distribution": "first_ospush", "importance": "NORMAL"}}``.
    """

    provider = "jpush"
    extra = "jpush"
    option_names = HTTP_OPTIONS | {
        "app_key",
        "master_secret",
        "apns_production",
        "vendor_channels",
        "time_to_live",
        "endpoint",
    }
    required_options = frozenset({"app_key", "master_secret"})

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)
        check_vendor_channels(alias, options.get("vendor_channels") or {})

    def payload(self, message: PushMessage) -> dict[str, Any]:
        platform = PLATFORMS.get(message.platform)
        if platform is None:
            raise MessageError(f"JPush cannot push to platform {message.platform!r}.")
        extras = {**message.data, **({"url": message.url} if message.url else {})}
        if platform == "ios":
            notification: dict[str, Any] = {"alert": {"title": message.title, "body": message.body}}
        else:
            notification = {"alert": message.body, "title": message.title}
        if extras:
            notification["extras"] = extras
        options: dict[str, Any] = {
            "apns_production": bool(self.options.get("apns_production", True))
        }
        if self.options.get("time_to_live") is not None:
            options["time_to_live"] = int(self.options["time_to_live"])
        if platform == "android" and self.options.get("vendor_channels"):
            options["third_party_channel"] = dict(self.options["vendor_channels"])
        return {
            "platform": [platform],
            "audience": {"registration_id": [message.token]},
            "notification": {platform: notification},
            "options": options,
        }

    def send_one(self, message: PushMessage) -> SendResult:
        response = self.client.post(
            self.options.get("endpoint", API),
            json=self.payload(message),
            auth=(self.options["app_key"], self.options["master_secret"]),
        )
        body = json_body(response)
        if response.is_success:
            return accepted(body.get("msg_id"), "msg_id")
        error = json_object(body.get("error"))
        code = str(error.get("code") or response.status_code)
        return ERRORS.result(
            code, error.get("message", ""), transient=is_transient(response.status_code)
        )
