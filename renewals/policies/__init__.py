"""Rule packs: what each jurisdiction requires of an auto-renewal, and which pack applies.

Built-in packs are TOML files in ``packs/``; ``RENEWALS["POLICIES"]`` adds packs or replaces
them, and a pack there may ``extends`` another one, overriding only the fields it names.
Parsed packs are cached until the ``RENEWALS`` setting changes. Nothing here touches the
database.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable, Mapping, Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from django.core.signals import setting_changed
from pydantic import ValidationError

from notifications.app_settings import imported
from renewals.conf import renewals_settings
from renewals.exceptions import PolicyError, UnknownPolicy

if TYPE_CHECKING:
    from renewals.models import RenewalTerms
    from renewals.types import User

from .models import (
    Applicability,
    CancellationFlow,
    CancellationRules,
    Channel,
    ConsentRules,
    DayCount,
    FreshConsent,
    GateRemedy,
    LegalSource,
    NoticeRule,
    PackStatus,
    PriceChangeRules,
    RenewalContext,
    RetentionRules,
    RulePack,
    ShortFirstTerm,
)

__all__ = [
    "Applicability",
    "CancellationFlow",
    "CancellationRules",
    "Channel",
    "ConsentRules",
    "DayCount",
    "FreshConsent",
    "GateRemedy",
    "LegalSource",
    "NoticeRule",
    "PackStatus",
    "PriceChangeRules",
    "RenewalContext",
    "RetentionRules",
    "RulePack",
    "ShortFirstTerm",
    "available_packs",
    "builtin_packs",
    "get_pack",
    "resolve_default_policy",
    "resolve_policy",
]

#: Lists of tables that an extending pack merges item by item, keyed by the named field;
#: every other list is replaced whole.
_KEYED_LISTS = {"notices": "id", "sources": "citation"}


@functools.cache
def _builtin_data() -> dict[str, dict[str, Any]]:
    """The raw contents of the built-in TOML packs, by code."""
    data = {}
    for entry in (files(__name__) / "packs").iterdir():
        if entry.name.endswith(".toml"):
            pack = tomllib.loads(entry.read_text(encoding="utf-8"))
            data[pack["code"]] = pack
    return data


@functools.cache
def builtin_packs() -> dict[str, RulePack]:
    """The packs shipped with this package, by code, whatever the settings say."""
    return {code: RulePack.model_validate(data) for code, data in _builtin_data().items()}


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base``: tables merge recursively, keyed lists item by item."""
    merged = dict(base)
    for name, value in override.items():
        old = merged.get(name)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[name] = _merge(old, value)
        elif name in _KEYED_LISTS and isinstance(old, list | tuple):
            merged[name] = _merge_keyed(old, value, _KEYED_LISTS[name])
        else:
            merged[name] = value
    return merged


def _merge_keyed(base: Sequence[Any], override: Any, key: str) -> Any:
    if not isinstance(override, list | tuple):
        return override  # not a list: let validation report it
    items = list(base)
    index = {item.get(key): i for i, item in enumerate(items) if isinstance(item, Mapping)}
    for item in override:
        position = index.get(item.get(key)) if isinstance(item, Mapping) else None
        if position is None:
            items.append(item)
        else:
            items[position] = _merge(items[position], item)
    return items


def _entry(code: str) -> Mapping[str, Any]:
    data = renewals_settings.POLICIES[code]
    if not isinstance(data, Mapping):
        raise PolicyError(f"RENEWALS['POLICIES'][{code!r}] must be a dict.")
    return data


def _parent(code: str, seen: tuple[str, ...]) -> str | None:
    """The code that the settings pack ``code`` extends, checked to exist and not to loop."""
    parent = _entry(code).get("extends")
    if parent is None:
        return None
    if not isinstance(parent, str):
        raise PolicyError(f"RENEWALS['POLICIES'][{code!r}]['extends'] must be a pack code.")
    if parent in seen and not (parent == code and parent in _builtin_data()):
        chain = " -> ".join((*seen, parent))
        raise PolicyError(f"RENEWALS['POLICIES'][{code!r}]['extends'] loops: {chain}.")
    if parent not in renewals_settings.POLICIES and parent not in _builtin_data():
        known = sorted(set(renewals_settings.POLICIES) | set(_builtin_data()))
        raise PolicyError(
            f"RENEWALS['POLICIES'][{code!r}]['extends'] names an unknown pack {parent!r}; "
            f"known packs: {', '.join(known)}."
        )
    return parent


def _lineage(code: str) -> list[tuple[str, bool]]:
    """``(code, is_settings_pack)`` for the settings pack ``code`` and each pack it extends.

    A pack that extends its own code extends the built-in pack of that code.
    """
    lineage = [(code, True)]
    while (parent := _parent(code, tuple(c for c, _ in lineage))) is not None:
        from_settings = parent in renewals_settings.POLICIES and parent != code
        lineage.append((parent, from_settings))
        if not from_settings:
            break
        code = parent
    return lineage


def _settings_pack_data(code: str) -> dict[str, Any]:
    """The raw data of the settings pack ``code``, merged over every pack it extends."""
    data: dict[str, Any] = {}
    for name, from_settings in reversed(_lineage(code)):
        layer = _entry(name) if from_settings else _builtin_data()[name]
        data = _merge(data, {key: value for key, value in layer.items() if key != "extends"})
    data["code"] = _entry(code).get("code", code)
    return data


def builtin_ancestors(code: str) -> list[RulePack]:
    """The built-in packs that the settings pack ``code`` replaces or extends."""
    builtins = builtin_packs()
    names = dict.fromkeys(name for name, _ in _lineage(code) if name in builtins)
    return [builtins[name] for name in names]


def build_settings_pack(code: str) -> RulePack:
    """The settings pack ``code``, validated.

    Raises :class:`PolicyError` naming the invalid fields (from pydantic's
    ``ValidationError``, kept as its cause), for an entry that is not a dict, a bad
    ``extends``, or a ``code`` that differs from its key.
    """
    try:
        pack = RulePack.model_validate(_settings_pack_data(code))
    except ValidationError as exc:
        raise PolicyError(
            f"RENEWALS['POLICIES'][{code!r}] is not a valid rule pack: {describe_errors(exc)}"
        ) from exc
    if pack.code != code:
        raise PolicyError(
            f"RENEWALS['POLICIES'][{code!r}] has code {pack.code!r}; leave it out or make it match."
        )
    return pack


def describe_errors(exc: ValidationError) -> str:
    """A one-line summary of a pydantic error: ``field.path: message`` for each error."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(pack)'}: {error['msg']}"
        for error in exc.errors()
    )


@functools.cache
def _packs() -> dict[str, RulePack]:
    packs = dict(builtin_packs())
    for code in renewals_settings.POLICIES:
        packs[code] = build_settings_pack(code)
    return packs


def available_packs() -> dict[str, RulePack]:
    """Every pack by code: the built-in ones, replaced or extended by ``RENEWALS["POLICIES"]``.

    Raises :class:`PolicyError` if a settings pack is invalid; the system checks say why.
    """
    return dict(_packs())


def get_pack(code: str) -> RulePack:
    """The pack ``code``; raises :class:`UnknownPolicy` naming the known codes."""
    packs = _packs()
    try:
        return packs[code]
    except KeyError:
        raise UnknownPolicy(code, list(packs)) from None


def resolve_default_policy(user: User, terms: RenewalTerms) -> str:
    """The default ``POLICY_RESOLVER``: ``RENEWALS["DEFAULT_POLICY"]`` for everyone."""
    return renewals_settings.DEFAULT_POLICY


def resolve_policy(user: User, terms: RenewalTerms) -> str:
    """The code of the pack that governs ``user``'s subscription on ``terms``.

    Asks the ``RENEWALS["POLICY_RESOLVER"]`` callable and checks that the pack it names
    exists; raises :class:`UnknownPolicy` if not.
    """
    resolver: Callable[[User, RenewalTerms], str] = imported(
        "RENEWALS['POLICY_RESOLVER']", renewals_settings.POLICY_RESOLVER
    )
    code = resolver(user, terms)
    get_pack(code)
    return code


def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    if setting == "RENEWALS":
        _packs.cache_clear()


setting_changed.connect(_clear_cache, dispatch_uid="renewals.policies.clear_cache")
