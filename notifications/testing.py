"""A pytest plugin for projects that send notifications; installing the package registers it.

Its autouse fixture empties the locmem backends' ``outbox`` and ``next_results`` around every
test, like Django's test runner does for ``mail.outbox``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .backends import locmem
from .messages import Message


@pytest.fixture(autouse=True)
def _notifications_locmem_outbox() -> Iterator[None]:
    locmem.outbox.clear()
    locmem.next_results.clear()
    yield
    locmem.outbox.clear()
    locmem.next_results.clear()


@pytest.fixture
def notifications_outbox() -> list[Message]:
    """The locmem outbox, emptied for this test."""
    return locmem.outbox
