"""Registering the push devices a user's app installs report, and removing them."""

from __future__ import annotations

from django.utils import timezone

from .models import Device
from .types import User


def register_device(user: User, *, platform: str, provider: str, token: str) -> tuple[Device, bool]:
    """Record that ``token`` now reaches ``user``; ``True`` with the device if it is new.

    Idempotent on the token: registering it again updates the device and marks it active and
    seen. A token belongs to one app install, so when another user signs in on that install
    and registers it, the device moves to them; the previous user is not sent to it any more.
    """
    device, created = Device.objects.update_or_create(
        token=token,
        defaults={
            "user": user,
            "platform": platform,
            "provider": provider,
            "active": True,
            "last_seen_at": timezone.now(),
        },
    )
    return device, created


def remove_device(device: Device) -> None:
    """Stop sending to ``device``. The row stays, as its deliveries refer to it; registering
    the token again makes it active."""
    if device.active:
        device.active = False
        device.save(update_fields=["active"])
