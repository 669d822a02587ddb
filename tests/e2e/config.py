"""The ``RENEWALS`` and ``NOTIFICATIONS`` settings of the end-to-end tests, shared by the
``qcluster`` subprocess and the tests that sweep in the pytest process."""

from __future__ import annotations

from typing import Any

#: A killed worker's claim is taken over after this many seconds.
LEASE_SECONDS = 2


def renewals(batch_size: int = 50, lease_seconds: int = LEASE_SECONDS) -> dict[str, Any]:
    """Every hour is a sending hour, so a notice planned now is due at once."""
    return {
        "BASE_URL": "https://example.test",
        "SEND_HOURS": (0, 24),
        "SWEEP_BATCH_SIZE": batch_size,
        "LEASE_SECONDS": lease_seconds,
    }


def notifications(send_delay: float = 0) -> dict[str, Any]:
    """The database backends, whose ``OutboxMessage`` rows the tests read back; with a
    ``send_delay``, ones that take that many seconds per message."""
    module = "tests.e2e.backends" if send_delay else "notifications.backends.database"
    options = {"OPTIONS": {"delay": send_delay}} if send_delay else {}
    return {
        "BACKENDS": {
            "sms": {"BACKEND": f"{module}.SMSBackend", **options},
            "push": {"BACKEND": f"{module}.PushBackend", **options},
        },
        "RECIPIENT_RESOLVER": "tests.e2e.recipients.resolve_recipient",
    }
