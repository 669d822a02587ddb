"""Backends that keep messages in memory, for tests (like ``django.core.mail.outbox``).

Every accepted message is appended to :data:`outbox`. To make sends fail, append
:class:`~notifications.messages.SendResult` objects (or exceptions, which are raised) to
:data:`next_results`: each message sent takes the first one instead of succeeding. The
``notifications`` pytest plugin empties both lists before every test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..messages import Message, SendResult
from . import base
from ._util import fake_message_id

#: Every message accepted by a locmem backend, in order.
outbox: list[Message] = []
#: Outcomes to return (or exceptions to raise) for the next messages, consumed in order.
next_results: list[SendResult | Exception] = []


class _LocmemBackend:
    def send_messages(self, messages: Sequence[Any]) -> list[SendResult]:
        results = []
        for message in messages:
            result = next_results.pop(0) if next_results else None
            if isinstance(result, Exception):
                raise result
            if result is None:
                outbox.append(message)
                result = SendResult.sent(fake_message_id("locmem"))
            results.append(result)
        return results


class SMSBackend(_LocmemBackend, base.SMSBackend):
    """Keeps SMS messages in :data:`outbox`."""


class PushBackend(_LocmemBackend, base.PushBackend):
    """Keeps push messages in :data:`outbox`."""


class EmailBackend(_LocmemBackend, base.EmailBackend):
    """Keeps emails in :data:`outbox` (``notifications.backends.email.EmailBackend`` over
    Django's locmem mail backend fills ``django.core.mail.outbox`` instead)."""
