"""Billing gateways: the configured one is :func:`get_gateway`."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from ..conf import renewals_settings
from .base import BillingGateway

__all__ = ["BillingGateway", "get_gateway"]


@cache
def get_gateway() -> BillingGateway:
    """The gateway named by ``RENEWALS["GATEWAY"]``, built once per configuration."""
    config = renewals_settings.GATEWAY
    try:
        cls = import_string(config["BACKEND"])
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"RENEWALS['GATEWAY']['BACKEND'] = {config['BACKEND']!r} cannot be imported: {exc}"
        ) from exc
    gateway = cls(**config.get("OPTIONS", {}))
    if not isinstance(gateway, BillingGateway):
        raise ImproperlyConfigured(
            f"RENEWALS['GATEWAY']['BACKEND'] = {config['BACKEND']!r} is not a BillingGateway."
        )
    return gateway


@receiver(setting_changed)
def _forget_gateway(*, setting: str, **kwargs: Any) -> None:
    if setting == "RENEWALS":
        get_gateway.cache_clear()
