"""Slow database backends, so that a test can kill a worker in the middle of a batch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from notifications.backends import base, database
from notifications.messages import SendResult


class _Slow(base.BaseBackend[Any]):
    """Takes ``OPTIONS["delay"]`` seconds per message, as a provider sending one by one."""

    option_names = frozenset({"delay"})
    options: dict[str, Any]

    def send_messages(self, messages: Sequence[Any]) -> list[SendResult]:
        time.sleep(self.options["delay"] * len(messages))
        return super().send_messages(messages)


class SMSBackend(_Slow, database.SMSBackend):
    pass


class PushBackend(_Slow, database.PushBackend):
    pass
