"""Backend aliases: ``NOTIFICATIONS['BACKENDS']`` resolved to configured instances."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..app_settings import imported
from ..conf import notifications_settings
from .base import BaseBackend

__all__ = ["BaseBackend", "channel_backends", "get_backend", "get_backend_class"]


def _config(alias: str) -> Mapping[str, Any]:
    backends = notifications_settings.BACKENDS
    if alias not in backends:
        raise ImproperlyConfigured(
            f"NOTIFICATIONS['BACKENDS'] has no alias {alias!r}; configured: {sorted(backends)}."
        )
    return backends[alias]


def _load(alias: str) -> tuple[type[BaseBackend[Any]], Mapping[str, Any]]:
    config = _config(alias)
    key = f"NOTIFICATIONS['BACKENDS'][{alias!r}]['BACKEND']"
    backend_class = imported(key, config["BACKEND"])
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
        raise ImproperlyConfigured(f"{key} = {config['BACKEND']!r} is not a BaseBackend subclass.")
    return backend_class, config


def get_backend_class(alias: str) -> type[BaseBackend[Any]]:
    """The class configured under ``NOTIFICATIONS['BACKENDS'][alias]['BACKEND']``."""
    return _load(alias)[0]


def get_backend(alias: str) -> BaseBackend[Any]:
    """A new instance of the backend configured under ``NOTIFICATIONS['BACKENDS'][alias]``."""
    backend_class, config = _load(alias)
    return backend_class(alias, **config.get("OPTIONS", {}))


def channel_backends(channel: str) -> dict[str, BaseBackend[Any]]:
    """The backends of ``NOTIFICATIONS['CHANNELS'][channel]``, by the device provider each
    sends to; the key ``""`` sends to any device (and every SMS).

    A push entry is one alias, serving the devices of its backend's ``provider`` (any device
    for a backend without one, like the development backends), or a dict
    ``{device provider: alias}``.
    """
    channels = notifications_settings.CHANNELS
    if channel not in channels:
        raise ImproperlyConfigured(
            f"NOTIFICATIONS['CHANNELS'] has no entry for channel {channel!r}."
        )
    entry = channels[channel]
    key = f"NOTIFICATIONS['CHANNELS'][{channel!r}]"
    if isinstance(entry, str):
        backend = _channel_backend(channel, key, entry)
        return {backend.provider if channel == "push" else "": backend}
    backends = {}
    for provider, alias in entry.items():
        backend = backends[provider] = _channel_backend(channel, f"{key}[{provider!r}]", alias)
        if backend.provider not in ("", provider):
            raise ImproperlyConfigured(
                f"{key}[{provider!r}] names alias {alias!r}, whose backend sends to "
                f"{backend.provider!r} devices."
            )
    return backends


def _channel_backend(channel: str, key: str, alias: str) -> BaseBackend[Any]:
    backend = get_backend(alias)
    if backend.channel != channel:
        raise ImproperlyConfigured(
            f"{key} names alias {alias!r}, whose backend sends {backend.channel!r} messages."
        )
    return backend
