"""Messages per second through ``notifications.dispatch.send`` with the dummy SMS backend.

Run: ``DATABASE_URL=postgres://… python bench/dispatch_throughput.py [N]`` (SQLite in memory
without DATABASE_URL). Uses ``tests.settings``, creates and migrates a throwaway test database,
sends one SMS to each of N phone recipients (default 2000), and prints the rate. Then counts
the SQL statements (``BEGIN`` and ``COMMIT`` included) of 100 more first sends.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("TEST_DB_SUFFIX", "_bench")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from notifications.dispatch import Notification, send  # noqa: E402
from notifications.message_templates import LocalizedText, MessageTemplate, register  # noqa: E402
from notifications.recipients import Recipient  # noqa: E402


class Fields(BaseModel):
    code: str


SAMPLE = 100


def send_code(recipient: Recipient, i: int) -> None:
    result = send(
        recipient,
        Notification("bench.code", {"code": str(i)}),
        channels=("sms",),
        idempotency_key=f"bench-{i}",
    )
    assert result.accepted


def main(count: int) -> None:
    register(
        MessageTemplate(
            key="bench.code",
            fields=Fields,
            texts={"en": LocalizedText(sms="Your code is {code}", push_title="", push_body="")},
        )
    )
    creation = connection.creation
    name = creation.create_test_db(verbosity=0, autoclobber=True)
    dummy = {"BACKEND": "notifications.backends.dummy.SMSBackend"}
    try:
        with override_settings(
            NOTIFICATIONS={"BACKENDS": {"sms": dummy}, "CHANNELS": {"sms": "sms"}}
        ):
            recipients = [
                Recipient(phone=f"+86138{i:08d}", locale="en") for i in range(count + SAMPLE)
            ]
            started = time.perf_counter()
            for i, recipient in enumerate(recipients[:count]):
                send_code(recipient, i)
            elapsed = time.perf_counter() - started
            with CaptureQueriesContext(connection) as queries:
                for i, recipient in enumerate(recipients[count:], start=count):
                    send_code(recipient, i)
    finally:
        creation.destroy_test_db(name, verbosity=0)
    print(
        f"{count} messages in {elapsed:.2f} s: {count / elapsed:.0f} messages/s, "
        f"{len(queries) / SAMPLE:.1f} queries per message (dummy SMS backend, {connection.vendor})"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
