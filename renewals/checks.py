"""System checks of the renewals configuration (ids ``renewals.E0xx`` / ``W0xx``).

Ids are never reused. E001-E009 and W001-W009 belong to the rule packs
(:mod:`renewals.policies.checks`); E010 onwards to the rest of the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch

from .conf import DEFAULTS, renewals_settings
from .exceptions import PolicyError
from .gateways import gateway_named, get_gateway
from .policies import PackStatus, available_packs
from .policies.checks import check_policies
from .schedules import intervals

register(check_policies)


@register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Every RENEWALS value is valid, and no key is a typo."""
    messages: list[CheckMessage] = []
    for key in DEFAULTS:
        if key in ("POLICIES", "DEFAULT_POLICY", "POLICY_RESOLVER", "GATEWAY", "GATEWAYS"):
            continue  # reported by their own checks
        try:
            getattr(renewals_settings, key)
            if key == "SCHEDULES":
                intervals()
        except ImproperlyConfigured as exc:
            messages.append(Error(str(exc), id="renewals.E011"))
    messages += [
        Warning(
            f"RENEWALS[{key!r}] is not a setting of django-renewals.",
            hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
            id="renewals.W010",
        )
        for key in renewals_settings.unknown_keys()
    ]
    return messages


@register()
def check_base_url(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Reminders carry absolute links, so a pack that plans notices needs ``BASE_URL``."""
    try:
        if renewals_settings.BASE_URL is not None:
            return []
    except ImproperlyConfigured:
        return []  # reported by check_settings
    try:
        packs = available_packs()
    except PolicyError:
        return []  # reported by check_policies
    with_notices = sorted(
        code for code, pack in packs.items() if pack.notices and pack.status is PackStatus.IN_FORCE
    )
    if not with_notices:
        return []
    return [
        Error(
            "RENEWALS['BASE_URL'] is not set, but the rule packs "
            f"{', '.join(with_notices)} send notices, whose links must be absolute.",
            hint="Set RENEWALS['BASE_URL'] to the site's address, e.g. 'https://example.com'.",
            id="renewals.E012",
        )
    ]


@register(Tags.urls)
def check_manage_url(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Messages and pages link to ``MANAGE_URL``, so it must resolve."""
    try:
        resolve_url(renewals_settings.MANAGE_URL)
    except ImproperlyConfigured:
        return []  # reported by check_settings
    except NoReverseMatch:
        return [
            Error(
                f"RENEWALS['MANAGE_URL'] {renewals_settings.MANAGE_URL!r} is no URL name "
                "of this site.",
                hint="Include renewals.urls (path('', include('renewals.urls'))) for the "
                "package's manage page, or set RENEWALS['MANAGE_URL'] to your own page.",
                id="renewals.E013",
            )
        ]
    return []


@register()
def check_gateway(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """The billing gateways (``GATEWAY`` and each of ``GATEWAYS``) can be built, and report
    no problem of their own."""
    messages: list[CheckMessage] = []
    try:
        gateways = [get_gateway()]
        names = [name for name in renewals_settings.GATEWAYS if name != gateways[0].name]
    except ImproperlyConfigured as exc:
        return [_gateway_error(exc)]
    for name in names:
        try:
            gateways.append(gateway_named(name))
        except ImproperlyConfigured as exc:
            messages.append(_gateway_error(exc))
    return messages + [message for gateway in gateways for message in gateway.check()]


def _gateway_error(exc: Exception) -> Error:
    return Error(
        str(exc),
        hint="Set RENEWALS['GATEWAY']['BACKEND'] (and each of RENEWALS['GATEWAYS']) to a "
        "BillingGateway class, e.g. 'renewals.gateways.local.LocalGateway'.",
        id="renewals.E010",
    )
