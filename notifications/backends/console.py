"""Backends that write each message to a stream (stdout by default), for development.

The recipient is masked (``+86 138****5678``, ``a***@example.com``, a token's first six
characters), since console output ends up in logs. An email is written as its subject and
text; its HTML alternative is left out.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from ..messages import EmailMessage, Message, PushMessage, SendResult
from . import base
from ._util import fake_message_id, masked_recipient


class _ConsoleBackend:
    option_names = frozenset({"stream"})
    alias: str
    options: dict[str, Any]
    _lock = threading.RLock()

    @property
    def stream(self) -> TextIO:
        stream: TextIO = self.options.get("stream") or sys.stdout
        return stream

    def send_messages(self, messages: Sequence[Any]) -> list[SendResult]:
        results = []
        with self._lock:
            for message in messages:
                result = SendResult.sent(fake_message_id("console"))
                self.stream.write(self.format(message, result.provider_message_id))
                results.append(result)
            self.stream.flush()
        return results

    def format(self, message: Message, message_id: str) -> str:
        """The text written for one message."""
        lines = [f"[{self.alias}] {message_id} to {masked_recipient(message)}"]
        if isinstance(message, PushMessage):
            lines.append(f"{message.platform}: {message.title}")
        elif isinstance(message, EmailMessage):
            lines.append(f"Subject: {message.subject}")
        lines += [message.body, "-" * 79, ""]
        return "\n".join(lines)


class SMSBackend(_ConsoleBackend, base.SMSBackend):
    """Writes SMS messages to ``OPTIONS['stream']`` (default stdout)."""


class PushBackend(_ConsoleBackend, base.PushBackend):
    """Writes push messages to ``OPTIONS['stream']`` (default stdout)."""


class EmailBackend(_ConsoleBackend, base.EmailBackend):
    """Writes emails to ``OPTIONS['stream']`` (default stdout)."""
