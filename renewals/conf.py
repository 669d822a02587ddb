"""Lazy access to the ``RENEWALS`` setting.

Every read goes back to ``django.conf.settings``, so ``override_settings`` always works. A
missing or invalid value raises :class:`~django.core.exceptions.ImproperlyConfigured` naming
the exact key to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _hours(key: str, value: Any) -> tuple[int, int]:
    try:
        start, end = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"RENEWALS[{key!r}] must be a pair of hours (start, end), got {value!r}."
        ) from None
    if not 0 <= start < end <= 24:
        raise ImproperlyConfigured(
            f"RENEWALS[{key!r}] must satisfy 0 <= start < end <= 24, got {value!r}."
        )
    return start, end


def _positive_int(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ImproperlyConfigured(f"RENEWALS[{key!r}] must be a non-negative integer.")
    return value


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ImproperlyConfigured(f"RENEWALS[{key!r}] must be a non-empty string.")
    return value


def _time_zone(key: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(_string(key, value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"RENEWALS[{key!r}] must be an IANA time zone such as 'Asia/Shanghai', got {value!r}."
        ) from None
    return str(value)


def _mapping(key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"RENEWALS[{key!r}] must be a dict.")
    return value


def _gateway(key: str, value: Any) -> Mapping[str, Any]:
    value = _mapping(key, value)
    if not isinstance(value.get("BACKEND"), str):
        raise ImproperlyConfigured(
            f"RENEWALS[{key!r}]['BACKEND'] must be the dotted path of a billing gateway class."
        )
    unknown = set(value) - {"BACKEND", "OPTIONS"}
    if unknown:
        raise ImproperlyConfigured(
            f"RENEWALS[{key!r}] has unknown keys {sorted(unknown)}; use 'BACKEND' and 'OPTIONS'."
        )
    _mapping(f"{key}']['OPTIONS", value.get("OPTIONS", {}))
    return value


#: key -> (default, validator)
DEFAULTS: dict[str, tuple[Any, Callable[[str, Any], Any]]] = {
    # The rule pack used when the resolver does not choose another.
    "DEFAULT_POLICY": ("cn", _string),
    # Dotted path of ``callable(user, terms) -> pack code``.
    "POLICY_RESOLVER": ("renewals.policies.resolve_default_policy", _string),
    # Extra rule packs, code -> dict in the shape of ``renewals.policies.RulePack``.
    "POLICIES": ({}, _mapping),
    # The billing gateway every service talks to.
    "GATEWAY": ({"BACKEND": "renewals.gateways.local.LocalGateway", "OPTIONS": {}}, _gateway),
    # Local hours (start inclusive, end exclusive) in which a notice may be planned to go out.
    "SEND_HOURS": ((10, 20), _hours),
    # Hours kept free between the planned send and the end of a notice's window, for retries.
    "RETRY_MARGIN_HOURS": (24, _positive_int),
    # Time zone for subscriptions whose user's zone is unknown; defaults to settings.TIME_ZONE.
    "DEFAULT_TIME_ZONE": (None, _time_zone),
}


class RenewalsSettings:
    """Attribute access to ``settings.RENEWALS`` with defaults and validation."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"Unknown RENEWALS setting {name!r}.")
        configured = getattr(settings, "RENEWALS", {})
        if not isinstance(configured, Mapping):
            raise ImproperlyConfigured("settings.RENEWALS must be a dict.")
        default, validate = DEFAULTS[name]
        return validate(name, configured.get(name, default))

    def unknown_keys(self) -> list[str]:
        """Keys in ``settings.RENEWALS`` that this package does not know (likely typos)."""
        configured = getattr(settings, "RENEWALS", {})
        return sorted(set(configured) - set(DEFAULTS)) if isinstance(configured, Mapping) else []

    @property
    def time_zone_name(self) -> str:
        return self.DEFAULT_TIME_ZONE or settings.TIME_ZONE or "UTC"


renewals_settings = RenewalsSettings()
