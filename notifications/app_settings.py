"""A lazy, validated view of one namespaced settings dict, such as ``NOTIFICATIONS``.

Every read goes back to ``django.conf.settings``, so ``override_settings`` always works. Each
key has a default and a validator; validators get the key's display name (e.g.
``NOTIFICATIONS['RATE_LIMIT']``) so an error names exactly what to fix. ``renewals`` uses the
same machinery for ``RENEWALS``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

#: ``validator(display name, value) -> cleaned value``; raises ImproperlyConfigured.
Validator = Callable[[str, Any], Any]


class UnknownSettingKey(ImproperlyConfigured):
    """The project's settings dict has a key the app does not know."""


def item(name: str, key: object) -> str:
    """The display name of ``key`` inside ``name``: ``NOTIFICATIONS['BACKENDS']['sms']``."""
    return f"{name}[{key!r}]"


def integer(name: str, value: Any, *, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ImproperlyConfigured(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return value


def positive_int(name: str, value: Any) -> int:
    return integer(name, value, minimum=1)


def non_negative_int(name: str, value: Any) -> int:
    return integer(name, value, minimum=0)


def positive_number(name: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise ImproperlyConfigured(f"{name} must be a number > 0, got {value!r}.")
    return float(value)


def rate_limit(name: str, value: Any) -> tuple[int, int] | None:
    """``(max count, window seconds)``, both positive; ``None`` for no limit."""
    if value is None:
        return None
    try:
        count, seconds = value
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            f"{name} must be None or (max count, window seconds), got {value!r}."
        ) from None
    return positive_int(name, count), positive_int(name, seconds)


def string(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ImproperlyConfigured(f"{name} must be a non-empty string, got {value!r}.")
    return value


def optional_string(name: str, value: Any) -> str | None:
    return None if value is None else string(name, value)


def mapping(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ImproperlyConfigured(f"{name} must be a dict, got {value!r}.")
    return value


def imported(name: str, path: str) -> Any:
    """The object at the dotted ``path`` that setting ``name`` gives; an error naming the
    setting if it cannot be imported."""
    try:
        return import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{name} = {path!r} cannot be imported: {exc}") from exc


def backend_config(name: str, value: Any, *, what: str) -> Mapping[str, Any]:
    """A ``{"BACKEND": dotted path, "OPTIONS": {...}}`` dict; ``what`` the class it names."""
    config = mapping(name, value)
    if not isinstance(config.get("BACKEND"), str):
        raise ImproperlyConfigured(f"{item(name, 'BACKEND')} must be the dotted path of {what}.")
    unknown = set(config) - {"BACKEND", "OPTIONS"}
    if unknown:
        raise ImproperlyConfigured(
            f"{name} has unknown keys {sorted(unknown)}; use 'BACKEND' and 'OPTIONS'."
        )
    mapping(item(name, "OPTIONS"), config.get("OPTIONS", {}))
    return config


class AppSettings:
    """Attribute access to ``settings.<setting>`` with defaults and validation.

    Validated values are cached until ``setting_changed`` names the setting (as
    ``override_settings`` and pytest-django's ``settings`` fixture do).
    """

    def __init__(self, setting: str, defaults: Mapping[str, tuple[Any, Validator]]) -> None:
        self._setting = setting
        self._defaults = defaults
        self._cache: dict[str, Any] = {}
        setting_changed.connect(self._forget, weak=False)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_") or key not in self._defaults:
            raise AttributeError(f"Unknown {self._setting} setting {key!r}.")
        try:
            return self._cache[key]
        except KeyError:
            pass
        default, validate = self._defaults[key]
        value = self._cache[key] = validate(
            item(self._setting, key), self.configured().get(key, default)
        )
        return value

    def _forget(self, *, setting: str, **kwargs: Any) -> None:
        if setting == self._setting:
            self._cache.clear()

    def configured(self) -> Mapping[str, Any]:
        """The project's dict as it is now (empty when not set).

        Raises :class:`UnknownSettingKey` if it has a key the app does not know: a typo would
        otherwise leave the default silently in force.
        """
        problems = self.unknown_key_problems()
        if problems:
            known = ", ".join(self.known_keys())
            raise UnknownSettingKey(f"{' '.join(problems)} Known keys: {known}.")
        return self._project_dict()

    def _project_dict(self) -> Mapping[str, Any]:
        value = getattr(settings, self._setting, {})
        if not isinstance(value, Mapping):
            raise ImproperlyConfigured(f"settings.{self._setting} must be a dict.")
        return value

    def known_keys(self) -> list[str]:
        """The keys the app reads: those of its defaults."""
        return sorted(self._defaults)

    def unknown_keys(self) -> list[object]:
        """Keys in the project's dict that the app does not know (likely typos)."""
        return sorted((key for key in self._project_dict() if key not in self._defaults), key=repr)

    def unknown_key_problems(self) -> list[str]:
        """A sentence for each of :meth:`unknown_keys`, naming the known key closest to it."""
        problems = []
        for key in self.unknown_keys():
            problem = f"{item(self._setting, key)} is not a setting"
            close = difflib.get_close_matches(str(key).upper(), self._defaults, n=1)
            problems.append(f"{problem}; did you mean {close[0]!r}?" if close else f"{problem}.")
        return problems

    def unknown_key_errors(self, check_id: str) -> list[CheckMessage]:
        """:meth:`unknown_key_problems` as system check errors with the id ``check_id``."""
        hint = f"Known keys: {', '.join(self.known_keys())}."
        return [Error(problem, hint=hint, id=check_id) for problem in self.unknown_key_problems()]
