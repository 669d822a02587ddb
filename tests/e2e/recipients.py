"""A recipient resolver that gives every user a phone number (the auth User has none)."""

from __future__ import annotations

from typing import Any

from notifications.recipients import Recipient
from notifications.recipients import resolve_recipient as resolve_default


def phone_number(user: Any) -> str:
    """A valid mainland China mobile number derived from the user's pk."""
    return f"+86138{user.pk:08d}"


def resolve_recipient(user: Any) -> Recipient:
    """The default resolver's recipient, with :func:`phone_number` as the user's number."""
    user.phone_number = phone_number(user)
    return resolve_default(user)
