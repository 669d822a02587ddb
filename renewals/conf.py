"""Lazy access to the ``RENEWALS`` setting (see :mod:`notifications.app_settings`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from notifications.app_settings import (
    AppSettings,
    Validator,
    backend_config,
    item,
    mapping,
    non_negative_int,
    positive_int,
    rate_limit,
    string,
)


def _hours(name: str, value: Any) -> tuple[int, int]:
    try:
        start, end = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be a pair of hours (start, end), got {value!r}."
        ) from None
    if not 0 <= start < end <= 24:
        raise ImproperlyConfigured(f"{name} must satisfy 0 <= start < end <= 24, got {value!r}.")
    return start, end


def _time_zone(name: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(string(name, value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be an IANA time zone such as 'Asia/Shanghai', got {value!r}."
        ) from None
    return str(value)


def _base_url(name: str, value: Any) -> str | None:
    if value is None:
        return None
    parts = urlsplit(string(name, value))
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ImproperlyConfigured(
            f"{name} must be an absolute http(s) address such as 'https://example.com', "
            f"got {value!r}."
        )
    return str(value).rstrip("/")


#: HMAC-SHA256 wants a key of at least its output's 32 bytes.
_AUDIT_KEY_MIN_BYTES = 32


def _audit_key(name: str, value: Any) -> bytes | None:
    """``None``, or a key of at least 32 bytes (a ``str`` is taken as its UTF-8 bytes). The
    error never repeats the value: it is a secret."""
    if value is None:
        return None
    if not isinstance(value, str | bytes):
        got = f"a {type(value).__name__}"
    else:
        key = value.encode() if isinstance(value, str) else value
        if len(key) >= _AUDIT_KEY_MIN_BYTES:
            return key
        got = f"{len(key)} bytes"
    raise ImproperlyConfigured(
        f"{name} must be None or a secret of at least {_AUDIT_KEY_MIN_BYTES} bytes, such as "
        f"secrets.token_hex(32) read from the environment; got {got}."
    )


def _gateway(name: str, value: Any) -> Mapping[str, Any]:
    return backend_config(name, value, what="a billing gateway class")


#: Scope -> (max requests, window seconds) on the one-click link's pages: 10 a minute per
#: token, 60 a minute per client IP. The IP limit also counts the statutory forms' POSTs.
DEFAULT_LINK_RATE_LIMIT = {"TOKEN": (10, 60), "IP": (60, 60)}


def _link_rate_limit(name: str, value: Any) -> dict[str, tuple[int, int] | None]:
    """``{"TOKEN": rate, "IP": rate}``, each a :func:`rate_limit`; a key left out keeps its
    default."""
    unknown = set(mapping(name, value)) - set(DEFAULT_LINK_RATE_LIMIT)
    if unknown:
        raise ImproperlyConfigured(
            f"{name} has unknown keys {sorted(unknown)}; use 'TOKEN' and 'IP'."
        )
    return {
        scope: rate_limit(item(name, scope), value.get(scope, default))
        for scope, default in DEFAULT_LINK_RATE_LIMIT.items()
    }


#: key -> (default, validator)
DEFAULTS: dict[str, tuple[Any, Validator]] = {
    # The rule pack used when the resolver does not choose another.
    "DEFAULT_POLICY": ("cn", string),
    # Dotted path of ``callable(user, terms) -> pack code``.
    "POLICY_RESOLVER": ("renewals.policies.resolve_default_policy", string),
    # Extra rule packs, code -> dict in the shape of ``renewals.policies.RulePack``.
    "POLICIES": ({}, mapping),
    # The billing gateway every service talks to.
    "GATEWAY": ({"BACKEND": "renewals.gateways.local.LocalGateway", "OPTIONS": {}}, _gateway),
    # Local hours (start inclusive, end exclusive) in which a notice may be planned to go out.
    "SEND_HOURS": ((10, 20), _hours),
    # Hours kept free between the planned send and the end of a notice's window, for retries.
    "RETRY_MARGIN_HOURS": (24, non_negative_int),
    # Time zone for subscriptions whose user's zone is unknown; defaults to settings.TIME_ZONE.
    "DEFAULT_TIME_ZONE": (None, _time_zone),
    # The site's absolute address ("https://example.com"): links in messages start with it.
    "BASE_URL": (None, _base_url),
    # Where a user manages their subscriptions: a URL name or path, as for LOGIN_URL.
    "MANAGE_URL": ("renewals:manage", string),
    # Seconds a rendered consent form stays valid; after that the user reads it again.
    "CONSENT_FORM_MAX_AGE": (86400, positive_int),
    # Requests to the one-click link's pages per token and per client IP, and POSTs of the
    # statutory forms per client IP: (max, seconds) or None, counted in the default cache.
    "LINK_RATE_LIMIT": (DEFAULT_LINK_RATE_LIMIT, _link_rate_limit),
    # Dotted path of ``callable(request) -> user | None``: who is calling the JSON API.
    "API_AUTHENTICATION": ("renewals.api.auth.session_user", string),
    # How many due notices one sweep claims per batch, and how long a claim holds.
    "SWEEP_BATCH_SIZE": (500, positive_int),
    "LEASE_SECONDS": (300, positive_int),
    # The first retry of a notice that could not be sent waits this long; each next one twice.
    "RETRY_BACKOFF_SECONDS": (300, positive_int),
    # A notice not given this many hours before its window closes tries the fallback channels.
    "FALLBACK_HOURS": (6, non_negative_int),
    # Gateways of subscriptions started under another RENEWALS["GATEWAY"]: name -> {"BACKEND":
    # dotted path, "OPTIONS": {...}}, the name being the gateway's own ``name``.
    "GATEWAYS": ({}, mapping),
    # django-q2 schedule name -> minutes between runs, or None to leave it out
    # (renewals.schedules.SCHEDULES lists them; ``renewals_schedules`` writes them).
    "SCHEDULES": ({}, mapping),
    # The secret that signs the audit log (links, heads, checkpoints); kept out of the
    # database. None: plain hashes only (see docs/audit.md for what each detects).
    "AUDIT_KEY": (None, _audit_key),
}


class RenewalsSettings(AppSettings):
    """``settings.RENEWALS`` with defaults and validation; each key's type is what its
    validator returns."""

    DEFAULT_POLICY: str
    POLICY_RESOLVER: str
    POLICIES: Mapping[str, Any]
    GATEWAY: Mapping[str, Any]
    SEND_HOURS: tuple[int, int]
    RETRY_MARGIN_HOURS: int
    DEFAULT_TIME_ZONE: str | None
    BASE_URL: str | None
    MANAGE_URL: str
    CONSENT_FORM_MAX_AGE: int
    LINK_RATE_LIMIT: dict[str, tuple[int, int] | None]
    API_AUTHENTICATION: str
    SWEEP_BATCH_SIZE: int
    LEASE_SECONDS: int
    RETRY_BACKOFF_SECONDS: int
    FALLBACK_HOURS: int
    GATEWAYS: Mapping[str, Any]
    SCHEDULES: Mapping[str, Any]
    AUDIT_KEY: bytes | None

    @property
    def time_zone_name(self) -> str:
        """``DEFAULT_TIME_ZONE``, else ``settings.TIME_ZONE``, else UTC."""
        return self.DEFAULT_TIME_ZONE or settings.TIME_ZONE or "UTC"


renewals_settings = RenewalsSettings("RENEWALS", DEFAULTS)
