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
from django.db import DatabaseError
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch
from django.utils import timezone

from notifications.app_settings import UnknownSettingKey

from .conf import DEFAULTS, renewals_settings
from .exceptions import PolicyError
from .gateways import gateway_named, get_gateway
from .models import LIVE_STATUSES, RenewalTerms, Subscription
from .policies import PackStatus, RulePack, available_packs
from .policies.checks import check_policies
from .policies.offers import never_compliant
from .schedules import intervals

register(check_policies)


@register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Every RENEWALS value is valid, and no key is a typo."""
    messages = renewals_settings.unknown_key_errors("renewals.E017")
    if messages:
        return messages  # no value can be read until the unknown keys are gone
    for key in DEFAULTS:
        if key in ("POLICIES", "DEFAULT_POLICY", "POLICY_RESOLVER", "GATEWAY", "GATEWAYS"):
            continue  # reported by their own checks
        try:
            getattr(renewals_settings, key)
            if key == "SCHEDULES":
                intervals()
        except ImproperlyConfigured as exc:
            messages.append(Error(str(exc), id="renewals.E011"))
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
    except UnknownSettingKey:
        return []  # reported by check_settings
    except ImproperlyConfigured as exc:
        return [_gateway_error(exc)]
    for name in names:
        try:
            gateways.append(gateway_named(name))
        except ImproperlyConfigured as exc:
            messages.append(_gateway_error(exc))
    return messages + [message for gateway in gateways for message in gateway.check()]


@register(Tags.database)
def check_offers(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """W002 for each offer in the database that can never renew lawfully under a rule pack
    it is offered under (:func:`~renewals.policies.offers.never_compliant`).

    The offers are rows, so this is a database check: ``migrate`` runs it, and ``check
    --database default``. Terms count as offered under the packs of their live
    subscriptions, and terms that no subscription uses yet under ``DEFAULT_POLICY``; terms of
    ended subscriptions only are history, and not checked. A warning, not an error: old rows
    must not stop a deploy, and ``subscribe`` refuses what the pack refuses anyway.
    """
    try:
        packs = available_packs()
        default = renewals_settings.DEFAULT_POLICY
        margin = renewals_settings.RETRY_MARGIN_HOURS
    except (PolicyError, ImproperlyConfigured):
        return []  # reported by check_policies and check_settings
    today = timezone.now().date()
    messages: list[CheckMessage] = []
    for alias in databases or ():
        try:
            offers = _offers(alias, default)
        except DatabaseError:
            continue  # not migrated yet: migrate checks before it migrates
        for terms, code in offers:
            pack: RulePack | None = packs.get(code)
            if pack is None or not pack.in_force_on(today):
                continue
            messages += [
                Warning(
                    f"Terms #{terms.pk} ({terms}) can never renew lawfully under rule pack "
                    f"{code!r}: {problem}.",
                    hint="Offer a longer term or free trial under this pack, or stop offering "
                    "these terms to its users.",
                    obj=terms,
                    id="renewals.W002",
                )
                for problem in never_compliant(
                    pack,
                    terms.interval,
                    terms.interval_count,
                    terms.trial_days,
                    margin_hours=margin,
                )
            ]
    return messages


def _offers(alias: str, default: str) -> list[tuple[RenewalTerms, str]]:
    """(terms, pack code) for each offer of database ``alias``: the terms of live
    subscriptions with their packs, and unused terms with the ``default`` pack."""
    pairs = set(
        Subscription.objects.using(alias)
        .filter(status__in=LIVE_STATUSES)
        .values_list("terms_id", "policy")
        .distinct()
    )
    unused = RenewalTerms.objects.using(alias).filter(subscriptions__isnull=True)
    pairs |= {(pk, default) for pk in unused.values_list("pk", flat=True)}
    terms = RenewalTerms.objects.using(alias).in_bulk({pk for pk, _code in pairs})
    return [(terms[pk], code) for pk, code in sorted(pairs)]


def _gateway_error(exc: Exception) -> Error:
    return Error(
        str(exc),
        hint="Set RENEWALS['GATEWAY']['BACKEND'] (and each of RENEWALS['GATEWAYS']) to a "
        "BillingGateway class, e.g. 'renewals.gateways.local.LocalGateway'.",
        id="renewals.E010",
    )
