"""Backends that store each message as an :class:`~notifications.models.OutboxMessage`.

For demos: a page can show a user's "phone" (or inbox) by listing the outbox messages of their
deliveries. The recipient is stored masked, like everywhere else; an email is stored as its
subject (``title``) and text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..messages import EmailMessage, Message, PushMessage, SendResult
from . import base
from ._util import fake_message_id, masked_recipient


def _channel_and_title(message: Message) -> tuple[str, str]:
    if isinstance(message, PushMessage):
        return "push", message.title
    if isinstance(message, EmailMessage):
        return "email", message.subject
    return "sms", ""


class _DatabaseBackend:
    alias: str
    batch_size = 100

    def send_messages(self, messages: Sequence[Any]) -> list[SendResult]:
        from ..models import OutboxMessage

        rows = []
        for message in messages:
            channel, title = _channel_and_title(message)
            rows.append(
                OutboxMessage(
                    channel=channel,
                    backend_alias=self.alias,
                    recipient=masked_recipient(message),
                    title=title,
                    url=(message.url or "") if isinstance(message, PushMessage) else "",
                    body=message.body,
                    provider_message_id=fake_message_id("db"),
                    delivery_id=message.metadata.get("delivery_id"),
                )
            )
        OutboxMessage.objects.bulk_create(rows)
        return [SendResult.sent(row.provider_message_id) for row in rows]


class SMSBackend(_DatabaseBackend, base.SMSBackend):
    """Stores SMS messages in the ``OutboxMessage`` table."""


class PushBackend(_DatabaseBackend, base.PushBackend):
    """Stores push messages in the ``OutboxMessage`` table."""


class EmailBackend(_DatabaseBackend, base.EmailBackend):
    """Stores emails in the ``OutboxMessage`` table."""
