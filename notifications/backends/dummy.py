"""Backends that accept every message and discard it (benchmarks, switched-off channels)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..messages import SendResult
from . import base
from ._util import fake_message_id


class _DummyBackend:
    batch_size = 1000
    thread_safe = True

    def send_messages(self, messages: Sequence[Any]) -> list[SendResult]:
        return [SendResult.sent(fake_message_id("dummy")) for _ in messages]


class SMSBackend(_DummyBackend, base.SMSBackend):
    """Accepts SMS messages and sends nothing."""


class PushBackend(_DummyBackend, base.PushBackend):
    """Accepts push messages and sends nothing."""


class EmailBackend(_DummyBackend, base.EmailBackend):
    """Accepts emails and sends nothing."""
