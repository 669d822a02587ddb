"""Backend aliases: ``NOTIFICATIONS['BACKENDS']`` resolved to configured instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..conf import notifications_settings
from .base import BaseBackend

__all__ = ["BaseBackend", "backend_for_channel", "get_backend", "get_backend_class"]


def _config(alias: str) -> Mapping[str, Any]:
    backends = notifications_settings.BACKENDS
    if alias not in backends:
        raise ImproperlyConfigured(
            f"NOTIFICATIONS['BACKENDS'] has no alias {alias!r}; configured: {sorted(backends)}."
        )
    return backends[alias]


def get_backend_class(alias: str) -> type[BaseBackend[Any]]:
    """The class configured under ``NOTIFICATIONS['BACKENDS'][alias]['BACKEND']``."""
    config = _config(alias)
    key = f"NOTIFICATIONS['BACKENDS'][{alias!r}]['BACKEND']"
    try:
        backend_class = import_string(config["BACKEND"])
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"{key} = {config['BACKEND']!r} cannot be imported: {exc}"
        ) from exc
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
        raise ImproperlyConfigured(f"{key} = {config['BACKEND']!r} is not a BaseBackend subclass.")
    return backend_class


def get_backend(alias: str) -> BaseBackend[Any]:
    """A new instance of the backend configured under ``NOTIFICATIONS['BACKENDS'][alias]``."""
    return get_backend_class(alias)(alias, **_config(alias).get("OPTIONS", {}))


def backend_for_channel(channel: str) -> BaseBackend[Any]:
    """The backend of the alias ``NOTIFICATIONS['CHANNELS'][channel]``."""
    channels = notifications_settings.CHANNELS
    if channel not in channels:
        raise ImproperlyConfigured(
            f"NOTIFICATIONS['CHANNELS'] has no entry for channel {channel!r}."
        )
    backend = get_backend(channels[channel])
    if backend.channel != channel:
        raise ImproperlyConfigured(
            f"NOTIFICATIONS['CHANNELS'][{channel!r}] names alias {channels[channel]!r}, "
            f"whose backend sends {backend.channel!r} messages."
        )
    return backend
