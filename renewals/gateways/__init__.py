"""Billing gateways: :func:`get_gateway` bills new subscriptions, :func:`gateway_for` the
processor that bills a given one."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from notifications.app_settings import backend_config, imported

from ..conf import renewals_settings
from ..exceptions import GatewayError
from .base import BillingGateway, Period

if TYPE_CHECKING:
    from ..models import Subscription

__all__ = ["BillingGateway", "Period", "gateway_for", "gateway_named", "get_gateway"]


@cache
def get_gateway() -> BillingGateway:
    """The gateway named by ``RENEWALS["GATEWAY"]``, built once per configuration: the one
    new subscriptions are billed by."""
    return _build("RENEWALS['GATEWAY']", renewals_settings.GATEWAY)


@cache
def gateway_named(name: str) -> BillingGateway:
    """The configured gateway called ``name``: ``RENEWALS["GATEWAY"]`` if that is its name,
    else ``RENEWALS["GATEWAYS"][name]``; :class:`GatewayError` if neither."""
    default = get_gateway()
    if name == default.name:
        return default
    others = renewals_settings.GATEWAYS
    if name not in others:
        raise GatewayError(
            f"No billing gateway named {name!r} is configured: RENEWALS['GATEWAY'] is "
            f"{default.name!r} and RENEWALS['GATEWAYS'] has {sorted(others) or 'no entries'}. "
            f"Add RENEWALS['GATEWAYS'][{name!r}] = {{'BACKEND': ..., 'OPTIONS': {{...}}}}."
        )
    setting = f"RENEWALS['GATEWAYS'][{name!r}]"
    gateway = _build(setting, backend_config(setting, others[name], what="a billing gateway class"))
    if gateway.name != name:
        raise ImproperlyConfigured(
            f"{setting} builds a gateway named {gateway.name!r}; the key must be its name."
        )
    return gateway


def gateway_for(subscription: Subscription) -> BillingGateway:
    """The gateway that bills ``subscription`` (by ``Subscription.gateway``, set when it
    started), whichever one new subscriptions go to now."""
    return gateway_named(subscription.gateway)


def _build(setting: str, config: Mapping[str, Any]) -> BillingGateway:
    cls = imported(f"{setting}['BACKEND']", config["BACKEND"])
    gateway = cls(**config.get("OPTIONS", {}))
    if not isinstance(gateway, BillingGateway):
        raise ImproperlyConfigured(
            f"{setting}['BACKEND'] = {config['BACKEND']!r} is not a BillingGateway."
        )
    return gateway


@receiver(setting_changed)
def _forget_gateways(*, setting: str, **kwargs: Any) -> None:
    if setting == "RENEWALS":
        get_gateway.cache_clear()
        gateway_named.cache_clear()
