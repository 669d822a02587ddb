"""System checks of the ``notifications`` settings and backends.

Ids (never reused): ``notifications.E001`` invalid setting, ``E002`` unknown setting key,
``E003`` backend alias that does not load, ``E004`` channel naming a missing or wrong alias
(of the other channel, or a push alias of another provider);
``W001`` (deploy) a development backend serves a channel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured

from .backends import channel_backends, get_backend
from .conf import DEFAULTS, notifications_settings

DEVELOPMENT_BACKENDS = ("locmem", "console", "dummy", "database")


@checks.register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Every ``NOTIFICATIONS`` key is known and valid; every alias loads and checks itself."""
    errors: list[CheckMessage] = [
        checks.Error(
            f"Unknown key NOTIFICATIONS[{key!r}].",
            hint=f"Known keys: {', '.join(sorted(DEFAULTS))}.",
            id="notifications.E002",
        )
        for key in notifications_settings.unknown_keys()
    ]
    for name in DEFAULTS:
        try:
            getattr(notifications_settings, name)
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id="notifications.E001"))
    if errors:
        return errors
    broken = []
    for alias in notifications_settings.BACKENDS:
        try:
            backend = get_backend(alias)
        except ImproperlyConfigured as exc:  # bad dotted path, OPTIONS, missing extra
            errors.append(checks.Error(str(exc), id="notifications.E003"))
            broken.append(alias)
        else:
            errors += backend.check()
    for channel, entry in notifications_settings.CHANNELS.items():
        if set([entry] if isinstance(entry, str) else entry.values()) & set(broken):
            continue  # its alias is reported above
        try:
            channel_backends(channel)
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id="notifications.E004"))
    return errors


@checks.register(checks.Tags.compatibility, deploy=True)
def check_deploy_backends(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """A channel served by a backend that sends nothing is a likely deployment mistake."""
    warnings: list[CheckMessage] = []
    try:
        channels = notifications_settings.CHANNELS
        backends = notifications_settings.BACKENDS
    except ImproperlyConfigured:
        return []  # reported by check_settings
    for channel, entry in channels.items():
        for alias in [entry] if isinstance(entry, str) else entry.values():
            dotted = backends.get(alias, {}).get("BACKEND", "")
            if (
                dotted.startswith("notifications.backends.")
                and dotted.split(".")[2] in DEVELOPMENT_BACKENDS
            ):
                warnings.append(
                    checks.Warning(
                        f"The {channel!r} channel uses {dotted}, which sends nothing to anyone.",
                        hint="Configure a provider backend in NOTIFICATIONS['BACKENDS'].",
                        id="notifications.W001",
                    )
                )
    return warnings
