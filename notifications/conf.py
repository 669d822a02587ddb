"""Lazy access to the ``NOTIFICATIONS`` setting.

Every read goes back to ``django.conf.settings``, so ``override_settings`` always works. A
missing or invalid value raises :class:`~django.core.exceptions.ImproperlyConfigured` naming
the exact key to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

CHANNEL_NAMES = ("sms", "push")


def _name(key: str) -> str:
    return "NOTIFICATIONS" + "".join(f"[{part!r}]" for part in key.split("."))


def _positive_int(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ImproperlyConfigured(f"{_name(key)} must be a positive integer, got {value!r}.")
    return value


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ImproperlyConfigured(f"{_name(key)} must be a non-empty string, got {value!r}.")
    return value


def _optional_string(key: str, value: Any) -> str | None:
    return None if value is None else _string(key, value)


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"{_name(key)} must be a dict, got {value!r}.")
    return value


def _backends(key: str, value: Any) -> Mapping[str, Mapping[str, Any]]:
    for alias, config in _mapping(key, value).items():
        entry = f"{key}.{alias}"
        _mapping(entry, config)
        if not isinstance(config.get("BACKEND"), str):
            raise ImproperlyConfigured(
                f"{_name(entry + '.BACKEND')} must be the dotted path of a backend class."
            )
        unknown = set(config) - {"BACKEND", "OPTIONS"}
        if unknown:
            raise ImproperlyConfigured(
                f"{_name(entry)} has unknown keys {sorted(unknown)}; use 'BACKEND' and 'OPTIONS'."
            )
        _mapping(entry + ".OPTIONS", config.get("OPTIONS", {}))
    return value


def _channels(key: str, value: Any) -> Mapping[str, str | Mapping[str, str]]:
    for channel, entry in _mapping(key, value).items():
        if channel not in CHANNEL_NAMES:
            raise ImproperlyConfigured(
                f"{_name(key)} has unknown channel {channel!r}; use {list(CHANNEL_NAMES)}."
            )
        entry_key = f"{key}.{channel}"
        if channel != "push" or not isinstance(entry, Mapping):
            _string(entry_key, entry)
            continue
        if not entry:
            raise ImproperlyConfigured(
                f"{_name(entry_key)} must be an alias or a dict {{device provider: alias}}."
            )
        for provider, alias in entry.items():
            if not isinstance(provider, str) or not provider:
                raise ImproperlyConfigured(
                    f"{_name(entry_key)} maps {provider!r}; its keys are device providers."
                )
            _string(f"{entry_key}.{provider}", alias)
    return value


def _quiet_hours(key: str, value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        start, end = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"{_name(key)} must be None or a pair of local hours (start, end), got {value!r}."
        ) from None
    if not (0 <= start <= 23 and 0 <= end <= 23 and start != end):
        raise ImproperlyConfigured(
            f"{_name(key)} must be two different hours in 0..23 (e.g. (21, 8)), got {value!r}."
        )
    return start, end


def _rate_limit(key: str, value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        count, seconds = value
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"{_name(key)} must be None or (max messages, window seconds), got {value!r}."
        ) from None
    return _positive_int(key, count), _positive_int(key, seconds)


#: key -> (default, validator)
DEFAULTS: dict[str, tuple[Any, Callable[[str, Any], Any]]] = {
    # Backend aliases. The default prints to stdout: nothing is sent, nothing silently dropped.
    "BACKENDS": (
        {
            "sms": {"BACKEND": "notifications.backends.console.SMSBackend"},
            "push": {"BACKEND": "notifications.backends.console.PushBackend"},
        },
        _backends,
    ),
    # Channel name ("sms", "push") -> the backend alias that sends it; for "push" also a dict
    # {device provider: alias}, e.g. {"fcm": "fcm", "apns": "apns"}.
    "CHANNELS": ({"sms": "sms", "push": "push"}, _channels),
    # Dotted path of ``callable(user) -> Recipient``.
    "RECIPIENT_RESOLVER": ("notifications.recipients.resolve_recipient", _string),
    # Local hours (start, end) in which nothing is sent, e.g. (21, 8); None: no quiet hours.
    "QUIET_HOURS": (None, _quiet_hours),
    # Per recipient: at most this many notifications in a sliding window of seconds.
    "RATE_LIMIT": ((10, 3600), _rate_limit),
    # A rendered SMS longer than this many segments is refused.
    "SMS_MAX_SEGMENTS": (4, _positive_int),
    # Hours after which a sent delivery with no receipt becomes "expired".
    "RECEIPT_TIMEOUT": (72, _positive_int),
    # Region for numbers written without a country code ("CN", "US"); None: require "+".
    "DEFAULT_REGION": (None, _optional_string),
}


class NotificationsSettings:
    """Attribute access to ``settings.NOTIFICATIONS`` with defaults and validation."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown NOTIFICATIONS setting {name!r}.")
        default, validate = DEFAULTS[name]
        return validate(name, self._configured().get(name, default))

    @staticmethod
    def _configured() -> Mapping[str, Any]:
        configured = getattr(settings, "NOTIFICATIONS", {})
        if not isinstance(configured, Mapping):
            raise ImproperlyConfigured("settings.NOTIFICATIONS must be a dict.")
        return configured

    def unknown_keys(self) -> list[str]:
        """Keys in ``settings.NOTIFICATIONS`` that this package does not know (likely typos)."""
        return sorted(set(self._configured()) - set(DEFAULTS))


notifications_settings = NotificationsSettings()
