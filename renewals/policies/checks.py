"""System checks of the rule-pack settings; ``renewals.checks`` registers them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, get_args

from django.apps import AppConfig
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from pydantic import ValidationError

from notifications.app_settings import UnknownSettingKey, imported
from renewals.conf import renewals_settings
from renewals.exceptions import PolicyError

from . import build_settings_pack, builtin_ancestors, builtin_packs
from .models import FreshConsent, GateRemedy, MessageField, NoticeRule, RulePack


def check_policies(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """Check ``RENEWALS["POLICIES"]``, ``DEFAULT_POLICY`` and ``POLICY_RESOLVER``.

    Also checks that the renewal reminder template has every field a pack's notices require.
    """
    messages: list[CheckMessage] = []
    try:
        configured = list(renewals_settings.POLICIES)
    except UnknownSettingKey:
        return []  # reported by renewals.checks.check_settings
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="renewals.E001")]
    packs: dict[str, RulePack | None] = dict(builtin_packs())
    for code in configured:
        packs[code] = None  # known, even when invalid: E001 says why
        try:
            pack = build_settings_pack(code)
        except PolicyError as exc:
            invalid_fields = isinstance(exc.__cause__, ValidationError)
            hint = "Fix the named fields; see the rule-packs page of the documentation."
            messages.append(
                Error(str(exc), hint=hint if invalid_fields else None, id="renewals.E001")
            )
        else:
            packs[code] = pack
            messages += _weakened(pack, builtin_ancestors(code))
    messages += _check_message_fields(pack for pack in packs.values() if pack is not None)
    messages += _check_default(packs)
    messages += _check_channels(packs)
    messages += _check_resolver()
    return messages


def _weakened(pack: RulePack, builtins: list[RulePack]) -> list[CheckMessage]:
    """E003 for each way ``pack`` asks less than a built-in pack it builds on."""
    rules = {rule.id: rule for rule in pack.notices}
    return [
        Error(
            f"Rule pack {pack.code!r} weakens the built-in pack {builtin.code!r}: {problem}.",
            hint=f"{hint} ({citation}).",
            id="renewals.E003",
        )
        for builtin in builtins
        for problem, hint, citation in [
            *((p, h, builtin.sources[0].citation) for p, h in _pack_weakenings(pack, builtin)),
            *(
                (f"notice rule {required.id!r} {problem}", hint, required.source)
                for required in builtin.notices
                for problem, hint in _weakenings(rules.get(required.id), required)
            ),
        ]
    ]


#: Pack-level protections, as (section, field): a ``True`` in the built-in must stay ``True``.
_KEPT_TRUE = (
    ("consent", "separate_control"),
    ("consent", "never_pre_ticked"),
    ("consent", "not_bundled"),
    ("consent", "pre_service_disclosure"),
    ("consent", "acknowledgment_required"),
    ("cancellation", "online_if_signed_up_online"),
)
#: ``price_change.fresh_consent`` from the least to the most it asks.
_FRESH_CONSENT_ORDER = (FreshConsent.NEVER, FreshConsent.ON_INCREASE, FreshConsent.ON_ANY_CHANGE)
#: Counts that may only grow.
_KEPT_AT_LEAST = (
    ("retention", "min_years"),
    ("retention", "years_after_contract_end"),
    ("cancellation", "withdrawal_days"),
)


def _pack_weakenings(pack: RulePack, builtin: RulePack) -> list[tuple[str, str]]:
    """``(problem, hint)`` for each pack-level rule ``pack`` relaxes against ``builtin``."""
    found = []
    if builtin.gate_remedy is GateRemedy.LAPSE and pack.gate_remedy is not GateRemedy.LAPSE:
        found.append(
            (
                f"it changes the renewal-gate remedy from 'lapse' to {pack.gate_remedy.value!r}",
                "Without the notice that law lets the contract end: keep gate_remedy = 'lapse'",
            )
        )
    for section, name in _KEPT_TRUE:
        if getattr(getattr(builtin, section), name) and not getattr(getattr(pack, section), name):
            found.append((f"it turns {section}.{name} off", f"Keep {section}.{name} = true"))
    for section, name in _KEPT_AT_LEAST:
        required, given = (
            getattr(getattr(builtin, section), name),
            getattr(getattr(pack, section), name),
        )
        if required is not None and (given is None or given < required):
            found.append(
                (f"it lowers {section}.{name} to {given!r}", f"Keep {section}.{name} >= {required}")
            )
    missing = set(builtin.consent.disclosure_fields) - set(pack.consent.disclosure_fields)
    if missing:
        found.append(
            (
                f"its disclosure leaves out {', '.join(sorted(missing))}",
                "Keep every consent.disclosure_fields entry of the built-in pack",
            )
        )
    if builtin.cancellation.login_required is False and pack.cancellation.login_required:
        found.append(("it requires a login to cancel", "Keep cancellation.login_required = false"))
    required, given = builtin.price_change.fresh_consent, pack.price_change.fresh_consent
    if _FRESH_CONSENT_ORDER.index(given) < _FRESH_CONSENT_ORDER.index(required):
        found.append(
            (
                f"it lowers price_change.fresh_consent from {required.value!r} to {given.value!r}",
                f"Keep price_change.fresh_consent = {required.value!r} or stricter",
            )
        )
    added = [channel for channel in pack.channels if channel not in builtin.channels]
    if added:
        found.append(
            (
                f"it accepts {', '.join(added)}, which the built-in pack does not accept as a "
                "medium of its notices",
                f"Keep channels among {', '.join(builtin.channels)}",
            )
        )
    if pack.cancellation.flow != builtin.cancellation.flow or (
        builtin.cancellation.labels and pack.cancellation.labels != builtin.cancellation.labels
    ):
        found.append(
            (
                "it changes the cancellation flow or its legally worded labels",
                f"Keep cancellation.flow = {builtin.cancellation.flow.value!r} and its labels",
            )
        )
    return found


def _weakenings(rule: NoticeRule | None, required: NoticeRule) -> list[tuple[str, str]]:
    """``(problem, hint)`` for each way ``rule`` asks less than the built-in ``required``."""
    if rule is None:
        return [("drops it", "Keep the rule")]
    found = []
    if rule.latest_days_before < required.latest_days_before:
        found.append(
            (
                f"closes its window {rule.latest_days_before} days before the renewal, "
                f"later than the {required.latest_days_before} days the law allows",
                f"Keep latest_days_before >= {required.latest_days_before}",
            )
        )
    if (
        required.earliest_is_legal_limit
        and rule.earliest_days_before > required.earliest_days_before
    ):
        found.append(
            (
                f"opens its window {rule.earliest_days_before} days before the renewal, "
                f"earlier than the {required.earliest_days_before} days the law allows",
                f"Keep earliest_days_before <= {required.earliest_days_before}",
            )
        )
    dropped = [channel for channel in required.channels if channel not in rule.channels]
    if dropped:
        found.append(
            (
                f"drops the channels {', '.join(dropped)}",
                f"Keep every channel of the built-in rule: {', '.join(required.channels)}",
            )
        )
    if required.strategy == "all" and rule.strategy != "all":
        found.append(
            (
                "sends on the first channel that works, where the built-in uses every one",
                'Keep strategy "all"',
            )
        )
    dropped_fields = set(required.required_fields) - set(rule.required_fields)
    if dropped_fields:
        found.append(
            (
                f"no longer requires the message fields {', '.join(sorted(dropped_fields))}",
                "Keep every required_fields entry of the built-in rule",
            )
        )
    if rule.day_count != required.day_count:
        found.append(
            (
                f"counts the days of its window as {rule.day_count} days, where the built-in "
                f"rule counts {required.day_count} days",
                f'Keep day_count = "{required.day_count}"',
            )
        )
    if required.delivered_when == "delivered" and rule.delivered_when != "delivered":
        found.append(
            (
                "counts a notice as given when a provider accepts it, where the built-in waits "
                "for a delivery receipt",
                'Keep delivered_when = "delivered"',
            )
        )
    narrowed = rule.applies_to.narrowed_from(required.applies_to)
    if narrowed:
        changes = ", ".join(
            f"{name}={getattr(rule.applies_to, name)!r} "
            f"(built-in: {getattr(required.applies_to, name)!r})"
            for name in narrowed
        )
        found.append(
            (
                f"may cover fewer renewals: applies_to has {changes}",
                "Change applies_to only to widen it: leave a field out, lower a minimum or "
                "raise a maximum",
            )
        )
    return found


def _check_message_fields(packs: Iterable[RulePack]) -> list[CheckMessage]:
    """E005 for each notice rule whose message template is not registered, lacks a field the
    rule requires, or needs a field that no notice can fill."""
    from notifications.exceptions import MessageError
    from notifications.message_templates import get_template

    fillable = set(get_args(MessageField))
    messages: list[CheckMessage] = []
    for pack in packs:
        for rule in pack.notices:
            where = f"Notice rule {rule.id!r} of rule pack {pack.code!r}"
            try:
                provided = list(get_template(rule.message).fields.model_fields)
            except MessageError:
                messages.append(
                    Error(
                        f"{where} is sent with the message template {rule.message!r}, which "
                        "is not registered.",
                        hint="Register a template under that key (notifications."
                        "message_templates.register), or name a registered one in message.",
                        id="renewals.E005",
                    )
                )
                continue
            missing = [name for name in rule.required_fields if name not in provided]
            if missing:
                messages.append(
                    Error(
                        f"{where} requires the message fields {', '.join(missing)}, which "
                        f"the message template {rule.message!r} does not provide.",
                        hint=f"The template provides {', '.join(provided)}. Register a template "
                        f"with these fields under {rule.message!r}, or leave them out of "
                        "required_fields.",
                        id="renewals.E005",
                    )
                )
            unfillable = [name for name in provided if name not in fillable]
            if unfillable:
                messages.append(
                    Error(
                        f"{where} is sent with the message template {rule.message!r}, whose "
                        f"fields {', '.join(unfillable)} no notice fills.",
                        hint=f"A notice fills {', '.join(get_args(MessageField))}.",
                        id="renewals.E005",
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
        resolver = imported("RENEWALS['POLICY_RESOLVER']", path)
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="renewals.E004")]
    if not callable(resolver):
        return [Error(f"RENEWALS['POLICY_RESOLVER'] {path!r} is not callable.", id="renewals.E004")]
    return []


def _check_channels(packs: dict[str, RulePack | None]) -> list[CheckMessage]:
    """W003 when the default pack gives notices on a channel ``NOTIFICATIONS['CHANNELS']``
    does not configure (an email channel without an ``"email"`` alias)."""
    from notifications.conf import notifications_settings

    try:
        pack = packs.get(renewals_settings.DEFAULT_POLICY)
        configured = notifications_settings.CHANNELS
    except ImproperlyConfigured:
        return []  # reported by their own checks
    if pack is None:
        return []
    used = {str(c) for rule in pack.notices for c in (*rule.channels, *rule.fallback_channels)}
    missing = sorted(used - set(configured))
    if not missing:
        return []
    return [
        Warning(
            f"The default rule pack {pack.code!r} gives notices by {', '.join(missing)}, which "
            "NOTIFICATIONS['CHANNELS'] does not configure: those notices reach users on their "
            "other channels only.",
            hint="Add a backend alias for each, e.g. NOTIFICATIONS['BACKENDS']['email'] = "
            "{'BACKEND': 'notifications.backends.email.EmailBackend'}.",
            id="renewals.W003",
        )
    ]
