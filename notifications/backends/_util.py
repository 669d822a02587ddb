"""Helpers shared by the built-in development backends."""

from __future__ import annotations

import uuid

from ..email_address import mask_email
from ..messages import EmailMessage, Message, SMSMessage
from ..phone import mask, mask_token


def fake_message_id(prefix: str) -> str:
    """A provider message id that looks like a real one and never repeats."""
    return f"{prefix}-{uuid.uuid4().hex}"


def masked_recipient(message: Message) -> str:
    """Who ``message`` goes to, fit for logs: a masked number or address, or a cut token."""
    if isinstance(message, SMSMessage):
        return mask(message.to)
    if isinstance(message, EmailMessage):
        return mask_email(message.to)
    return mask_token(message.token)
