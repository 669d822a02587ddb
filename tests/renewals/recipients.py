"""Recipient resolvers for tests: the phone number is kept in ``user.first_name`` and the
locale in ``user.last_name`` (the default ``User`` has no such fields); only
:data:`RESOLVER_WITH_EMAIL` reads ``user.email`` too."""

from __future__ import annotations

from notifications.exceptions import InvalidRecipient
from notifications.recipients import Recipient
from notifications.types import User

RESOLVER = "tests.renewals.recipients.resolve"
RESOLVER_WITH_EMAIL = "tests.renewals.recipients.resolve_with_email"


def resolve(user: User) -> Recipient:
    return _recipient(user, email=None)


def resolve_with_email(user: User) -> Recipient:
    return _recipient(user, email=user.email or None)


def _recipient(user: User, email: str | None) -> Recipient:
    devices = sorted((d for d in user.notification_devices.all() if d.active), key=lambda d: d.pk)
    if not user.first_name and not devices and not email:
        raise InvalidRecipient(f"user {user.pk} has no phone number and no active device")
    return Recipient(
        user=user,
        phone=user.first_name or None,
        devices=devices,
        locale=user.last_name or "en",
        email=email,
    )
