"""System checks of the ``notifications`` settings and backends.

Ids (never reused): ``notifications.E001`` invalid setting, ``E002`` unknown setting key,
``E003`` backend alias that does not load, ``E004`` channel naming a missing or wrong alias
(of the other channel, or a push alias of another provider), ``E005`` ``USE_TZ`` is off;
``W001`` (deploy) a development backend serves a channel (for the email backend: a Django
mail backend that sends nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured

from .backends import channel_backends, get_backend
from .backends.email import mail_backend_path
from .conf import DEFAULTS, notifications_settings

DEVELOPMENT_BACKENDS = ("locmem", "console", "dummy", "database")
#: Django's mail backends that send nothing to anyone.
DEVELOPMENT_MAIL_BACKENDS = frozenset(
    f"django.core.mail.backends.{name}.EmailBackend"
    for name in ("locmem", "console", "dummy", "filebased")
)


@checks.register()
def check_time_zone_support(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """``USE_TZ`` must be on: without it ``timezone.now()`` is the local time of ``TIME_ZONE``,
    which the backends would sign as UTC (Aliyun's ``Timestamp`` 8 hours off under
    ``Asia/Shanghai``, so every call refused), and the aware times of receipts could not be
    stored."""
    if settings.USE_TZ:
        return []
    return [
        checks.Error(
            "The notifications app needs USE_TZ = True.",
            hint="Set USE_TZ = True: with it off, the times signed for the providers (in UTC) "
            "are local times, off by the offset of TIME_ZONE.",
            id="notifications.E005",
        )
    ]


@checks.register()
def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Every ``NOTIFICATIONS`` key is known and valid; every alias loads and checks itself."""
    errors = notifications_settings.unknown_key_errors("notifications.E002")
    if errors:
        return errors  # no value can be read until the unknown keys are gone
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
            dotted = _development_backend(backends.get(alias, {}))
            if dotted:
                warnings.append(
                    checks.Warning(
                        f"The {channel!r} channel uses {dotted}, which sends nothing to anyone.",
                        hint="Configure a provider backend in NOTIFICATIONS['BACKENDS'].",
                        id="notifications.W001",
                    )
                )
    return warnings


def _development_backend(config: Mapping[str, Any]) -> str:
    """The dotted path of the backend in an alias's ``config`` that sends nothing, or ``""``."""
    dotted: str = config.get("BACKEND", "")
    if (
        dotted.startswith("notifications.backends.")
        and dotted.split(".")[2] in DEVELOPMENT_BACKENDS
    ):
        return dotted
    if dotted == "notifications.backends.email.EmailBackend":
        mail = mail_backend_path(config.get("OPTIONS", {}))
        return mail if mail in DEVELOPMENT_MAIL_BACKENDS else ""
    return ""
