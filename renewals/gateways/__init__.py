"""Billing gateways: the configured one is :func:`get_gateway`."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from notifications.app_settings import imported

from ..conf import renewals_settings
from .base import BillingGateway

__all__ = ["BillingGateway", "get_gateway"]


@cache
def get_gateway() -> BillingGateway:
    """The gateway named by ``RENEWALS["GATEWAY"]``, built once per configuration."""
    config = renewals_settings.GATEWAY
    cls = imported("RENEWALS['GATEWAY']['BACKEND']", config["BACKEND"])
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
