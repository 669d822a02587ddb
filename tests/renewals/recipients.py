"""A recipient resolver for tests: the phone number is kept in ``user.first_name`` and the
locale in ``user.last_name`` (the default ``User`` has no such fields)."""

from __future__ import annotations

from typing import Any

from notifications.exceptions import InvalidRecipient
from notifications.recipients import Recipient

RESOLVER = "tests.renewals.recipients.resolve"


def resolve(user: Any) -> Recipient:
    devices = sorted((d for d in user.notification_devices.all() if d.active), key=lambda d: d.pk)
    if not user.first_name and not devices:
        raise InvalidRecipient(f"user {user.pk} has no phone number and no active device")
    return Recipient(
        user=user, phone=user.first_name or None, devices=devices, locale=user.last_name or "en"
    )
