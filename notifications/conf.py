"""Lazy access to the ``NOTIFICATIONS`` setting (see :mod:`notifications.app_settings`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .app_settings import (
    AppSettings,
    Validator,
    backend_config,
    item,
    mapping,
    optional_string,
    positive_int,
    rate_limit,
    string,
)

CHANNEL_NAMES = ("sms", "push", "email")


def _backends(name: str, value: Any) -> Mapping[str, Mapping[str, Any]]:
    backends = mapping(name, value)
    for alias, config in backends.items():
        backend_config(item(name, alias), config, what="a backend class")
    return backends


def _channels(name: str, value: Any) -> Mapping[str, str | Mapping[str, str]]:
    if value is None:
        return _default_channels()
    channels = mapping(name, value)
    for channel, entry in channels.items():
        if channel not in CHANNEL_NAMES:
            raise ImproperlyConfigured(
                f"{name} has unknown channel {channel!r}; use {list(CHANNEL_NAMES)}."
            )
        entry_name = item(name, channel)
        if channel != "push" or not isinstance(entry, Mapping):
            string(entry_name, entry)
            continue
        if not entry:
            raise ImproperlyConfigured(
                f"{entry_name} must be an alias or a dict {{device provider: alias}}."
            )
        for provider, alias in entry.items():
            if not isinstance(provider, str) or not provider:
                raise ImproperlyConfigured(
                    f"{entry_name} maps {provider!r}; its keys are device providers."
                )
            string(item(entry_name, provider), alias)
    return channels


def _default_channels() -> dict[str, str]:
    """Each channel to the alias of its name: ``sms`` and ``push`` always, ``email`` when
    ``BACKENDS`` has an ``"email"`` alias (a project that set ``BACKENDS`` before the email
    channel existed sends no email until it adds one)."""
    channels = {"sms": "sms", "push": "push"}
    if "email" in notifications_settings.BACKENDS:
        channels["email"] = "email"
    return channels


def _quiet_hours(name: str, value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        start, end = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be None or a pair of local hours (start, end), got {value!r}."
        ) from None
    if not (0 <= start <= 23 and 0 <= end <= 23 and start != end):
        raise ImproperlyConfigured(
            f"{name} must be two different hours in 0..23 (e.g. (21, 8)), got {value!r}."
        )
    return start, end


#: key -> (default, validator)
DEFAULTS: dict[str, tuple[Any, Validator]] = {
    # Backend aliases. The default prints to stdout: nothing is sent, nothing silently dropped.
    "BACKENDS": (
        {
            "sms": {"BACKEND": "notifications.backends.console.SMSBackend"},
            "push": {"BACKEND": "notifications.backends.console.PushBackend"},
            "email": {"BACKEND": "notifications.backends.console.EmailBackend"},
        },
        _backends,
    ),
    # Channel name ("sms", "push", "email") -> the backend alias that sends it; for "push"
    # also a dict {device provider: alias}, e.g. {"fcm": "fcm", "apns": "apns"}. None: each
    # channel to the alias of its name (email only where BACKENDS has an "email" alias).
    "CHANNELS": (None, _channels),
    # Dotted path of ``callable(user) -> Recipient``.
    "RECIPIENT_RESOLVER": ("notifications.recipients.resolve_recipient", string),
    # Local hours (start, end) in which nothing is sent, e.g. (21, 8); None: no quiet hours.
    "QUIET_HOURS": (None, _quiet_hours),
    # Per recipient: at most this many notifications in a sliding window of seconds.
    "RATE_LIMIT": ((10, 3600), rate_limit),
    # A rendered SMS longer than this many segments is refused.
    "SMS_MAX_SEGMENTS": (4, positive_int),
    # Hours after which a sent delivery with no receipt becomes "expired".
    "RECEIPT_TIMEOUT": (72, positive_int),
    # Region for numbers written without a country code ("CN", "US"); None: require "+".
    "DEFAULT_REGION": (None, optional_string),
}


class NotificationsSettings(AppSettings):
    """``settings.NOTIFICATIONS`` with defaults and validation; each key's type is what its
    validator returns."""

    BACKENDS: Mapping[str, Mapping[str, Any]]
    CHANNELS: Mapping[str, str | Mapping[str, str]]
    RECIPIENT_RESOLVER: str
    QUIET_HOURS: tuple[int, int] | None
    RATE_LIMIT: tuple[int, int] | None
    SMS_MAX_SEGMENTS: int
    RECEIPT_TIMEOUT: int
    DEFAULT_REGION: str | None


notifications_settings = NotificationsSettings("NOTIFICATIONS", DEFAULTS)
