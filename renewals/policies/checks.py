"""System checks of the rule-pack settings; ``renewals.checks`` registers them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.module_loading import import_string
from pydantic import ValidationError

from renewals.conf import renewals_settings
from renewals.exceptions import PolicyError

from . import build_settings_pack, builtin_ancestors, builtin_packs, describe_errors
from .models import RulePack


def check_policies(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Check ``RENEWALS["POLICIES"]``, ``DEFAULT_POLICY`` and ``POLICY_RESOLVER``."""
    messages: list[CheckMessage] = []
    try:
        configured = list(renewals_settings.POLICIES)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="renewals.E001")]
    packs: dict[str, RulePack | None] = dict(builtin_packs())
    for code in configured:
        packs[code] = None  # known, even when invalid: E001 says why
        try:
            pack = build_settings_pack(code)
        except ValidationError as exc:
            messages.append(
                Error(
                    f"RENEWALS['POLICIES'][{code!r}] is not a valid rule pack: "
                    f"{describe_errors(exc)}",
                    hint="Fix the named fields; see the rule-packs page of the documentation.",
                    id="renewals.E001",
                )
            )
        except PolicyError as exc:
            messages.append(Error(str(exc), id="renewals.E001"))
        else:
            packs[code] = pack
            messages += _weakened(pack, builtin_ancestors(code))
    messages += _check_default(packs)
    messages += _check_resolver()
    return messages


def _weakened(pack: RulePack, builtins: list[RulePack]) -> list[CheckMessage]:
    """E003 for each built-in notice rule that ``pack`` drops or lets go out too late."""
    messages: list[CheckMessage] = []
    rules = {rule.id: rule for rule in pack.notices}
    for builtin in builtins:
        for required in builtin.notices:
            rule = rules.get(required.id)
            if rule is None:
                problem = "drops it"
            elif rule.latest_days_before < required.latest_days_before:
                problem = (
                    f"closes its window {rule.latest_days_before} days before the renewal, "
                    f"later than the {required.latest_days_before} days the law allows"
                )
            else:
                continue
            messages.append(
                Error(
                    f"Rule pack {pack.code!r} weakens notice rule {required.id!r} of the "
                    f"built-in pack {builtin.code!r}: it {problem}.",
                    hint=f"Keep the rule, with latest_days_before >= {required.latest_days_before}"
                    f" ({required.source}).",
                    id="renewals.E003",
                )
            )
    return messages


def _check_default(packs: dict[str, RulePack | None]) -> list[CheckMessage]:
    try:
        code = renewals_settings.DEFAULT_POLICY
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="renewals.E002")]
    if code not in packs:
        return [
            Error(
                f"RENEWALS['DEFAULT_POLICY'] is {code!r}, which names no rule pack.",
                hint=f"Use one of: {', '.join(sorted(packs))}.",
                id="renewals.E002",
            )
        ]
    pack = packs[code]
    today = timezone.now().date()
    if pack is not None and not pack.in_force_on(today):
        return [
            Warning(
                f"The default rule pack {code!r} is not in force on {today.isoformat()} "
                f"(status {pack.status.value}, effective from {pack.effective_from or 'unknown'}).",
                hint="Renewals are planned under rules that do not apply yet or any more; "
                "choose a pack in force as RENEWALS['DEFAULT_POLICY'].",
                id="renewals.W001",
            )
        ]
    return []


def _check_resolver() -> list[CheckMessage]:
    try:
        path = renewals_settings.POLICY_RESOLVER
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="renewals.E004")]
    try:
        resolver = import_string(path)
    except ImportError as exc:
        return [
            Error(
                f"RENEWALS['POLICY_RESOLVER'] {path!r} cannot be imported: {exc}",
                id="renewals.E004",
            )
        ]
    if not callable(resolver):
        return [Error(f"RENEWALS['POLICY_RESOLVER'] {path!r} is not callable.", id="renewals.E004")]
    return []
