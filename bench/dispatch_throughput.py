"""Messages per second through ``notifications.dispatch``: SMS with the dummy backend, and
email through Django's locmem mail backend.

Run: ``DATABASE_URL=postgres://… python bench/dispatch_throughput.py [N]`` (SQLite in memory
without DATABASE_URL). Uses ``bench.settings``, creates and migrates a throwaway test database,
and prints one line per run:

- ``send``, one SMS to each of N phone recipients (default 2000) through the dummy backend,
  then the SQL statements (``BEGIN`` and ``COMMIT`` included) of 100 more first sends;
- ``send``, one email to each of N addresses through ``notifications.backends.email`` over
  Django's locmem mail backend: the whole email path but the network (the HTML rendered from
  its template, the MIME message built, the ``Message-ID`` derived), with its statements;
- ``send_many``, the same N emails in one call, as the renewals sweep sends its batches.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("TEST_DB_SUFFIX", "_bench")

import django

django.setup()

from django.core import mail  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from notifications.dispatch import Notification, Request, send, send_many  # noqa: E402
from notifications.message_templates import LocalizedText, MessageTemplate, register  # noqa: E402
from notifications.recipients import Recipient  # noqa: E402


class Fields(BaseModel):
    code: str
    url: str


SAMPLE = 100
NOTIFICATION = "bench.code"
URL = "https://shop.example/c/0123456789abcdef"
TEXT = LocalizedText(
    sms="Your code is {code}",
    push_title="",
    push_body="",
    email_subject="Your code is {code}",
    email_body="Your code is {code}.\n\nNot you? Turn it off here:\n{url}",
)
SMS_ONLY = {
    "BACKENDS": {"sms": {"BACKEND": "notifications.backends.dummy.SMSBackend"}},
    "CHANNELS": {"sms": "sms"},
}
LOCMEM_MAIL = "django.core.mail.backends.locmem.EmailBackend"
EMAIL_ONLY = {
    "BACKENDS": {
        "email": {
            "BACKEND": "notifications.backends.email.EmailBackend",
            "OPTIONS": {"backend": LOCMEM_MAIL, "from_email": "bench@shop.example"},
        }
    },
    "CHANNELS": {"email": "email"},
}


def sms_to(i: int) -> Recipient:
    return Recipient(phone=f"+86138{i:08d}", locale="en")


def email_to(i: int) -> Recipient:
    return Recipient(email=f"user{i}@example.com", locale="en")


def notification(i: int) -> Notification:
    return Notification(NOTIFICATION, {"code": str(i), "url": URL})


def send_one(channel: str, recipient: Recipient, key: str, i: int) -> None:
    result = send(recipient, notification(i), channels=(channel,), idempotency_key=key)
    assert result.accepted


def one_by_one(
    label: str, channel: str, to: Callable[[int], Recipient], count: int, prefix: str
) -> None:
    """``count`` first sends, one ``send`` call each, then the statements of ``SAMPLE`` more."""
    started = time.perf_counter()
    for i in range(count):
        send_one(channel, to(i), f"{prefix}-{i}", i)
    elapsed = time.perf_counter() - started
    with CaptureQueriesContext(connection) as queries:
        for i in range(count, count + SAMPLE):
            send_one(channel, to(i), f"{prefix}-{i}", i)
    print(
        f"send, {label}: {count} messages in {elapsed:.2f} s: {count / elapsed:.0f} messages/s, "
        f"{len(queries) / SAMPLE:.1f} queries per message ({connection.vendor})"
    )


def emails_in_one_call(count: int) -> None:
    requests = [
        Request(email_to(i), notification(i), ("email",), f"many-{i}") for i in range(count)
    ]
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        results = send_many(requests)
        elapsed = time.perf_counter() - started
    assert len(results) == count
    print(
        f"send_many, email (Django locmem mail): {count} messages in {elapsed:.2f} s: "
        f"{count / elapsed:.0f} messages/s, {len(queries) / count:.2f} queries per message "
        f"({connection.vendor})"
    )


def main(count: int) -> None:
    register(MessageTemplate(key=NOTIFICATION, fields=Fields, texts={"en": TEXT}))
    creation = connection.creation
    name = creation.create_test_db(verbosity=0, autoclobber=True)
    mail.outbox = []
    try:
        with override_settings(NOTIFICATIONS=SMS_ONLY):
            one_by_one("SMS (dummy backend)", "sms", sms_to, count, "sms")
        with override_settings(NOTIFICATIONS=EMAIL_ONLY, EMAIL_BACKEND=LOCMEM_MAIL):
            one_by_one("email (Django locmem mail)", "email", email_to, count, "email")
            emails_in_one_call(count)
        assert len(mail.outbox) == 2 * count + SAMPLE
    finally:
        creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
