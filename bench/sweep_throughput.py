"""Renewal notices sent per second by the sweep, end to end, on the configured database.

Run: ``DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres TEST_DB_SUFFIX=_sbench
python bench/sweep_throughput.py [N]`` (SQLite in memory without DATABASE_URL). Uses
``bench.settings``, creates and migrates a throwaway test database, makes N subscribers
(default 5000) with a phone number and a push device, and a ``cn`` notice due now for each
(one SMS and one push), then times ``renewals.tasks.send_due_notices()``:

- through the dummy backends (what the package itself costs);
- the same through 2 and 4 worker processes sweeping at once (PostgreSQL only), as one
  node's qcluster with that many workers would;
- through providers that answer after 100 ms (Twilio for SMS, FCM for push, over a fake
  httpx transport, so the real request-building code runs), 100 calls in flight per backend;
- and, beside each, notices sent one ``dispatch.send`` call each, the way a task per
  reminder does it (fewer of them: 500, and 10 through the slow providers).

Usage: ``sweep_throughput.py [N] [N_SLOW]`` (defaults 5000 and 2000).

Prints a table; asserts nothing about timings.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("TEST_DB_SUFFIX", "_sbench")

import django

django.setup()

import httpx  # noqa: E402
from bulk import RESOLVER, cn_reminders, cn_subscriptions, reachable, subscribers  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.utils import timezone  # noqa: E402

from notifications.dispatch import send  # noqa: E402
from notifications.models import Delivery, Device  # noqa: E402
from renewals.links import cancel_url  # noqa: E402
from renewals.models import NoticeStatus, RenewalNotice  # noqa: E402
from renewals.services.notice_state import notice_reference  # noqa: E402
from renewals.services.sweep import reminder  # noqa: E402
from renewals.tasks import send_due_notices  # noqa: E402
from renewals.testing.factories import make_terms  # noqa: E402

PROVIDER_DELAY = 0.1
#: Provider calls in flight per backend alias in the slow-provider rows.
CONCURRENCY = 100
#: Worker processes of one node (a qcluster's ``workers``) in the multi-process rows.
WORKERS = (2, 4)

DUMMY = {
    "sms": {"BACKEND": "notifications.backends.dummy.SMSBackend"},
    "push": {"BACKEND": "notifications.backends.dummy.PushBackend"},
}


def slow_transport(reply: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        time.sleep(PROVIDER_DELAY)
        return reply(request)

    return httpx.MockTransport(handler)


def twilio_reply(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"sid": "SM" + os.urandom(8).hex(), "status": "queued"})


def fcm_reply(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/token"):
        return httpx.Response(200, json={"access_token": "t", "expires_in": 3600})
    return httpx.Response(200, json={"name": "projects/p/messages/" + os.urandom(8).hex()})


def fcm_service_account() -> dict[str, str]:
    """A service account for the FCM backend, with a new RSA key: it signs the token
    request, which the fake transport answers without checking it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "project_id": "p",
        "private_key": pem.decode(),
        "client_email": "push@p.iam.gserviceaccount.com",
    }


def slow_providers() -> dict[str, Any]:
    return {
        "sms": {
            "BACKEND": "notifications.backends.twilio.TwilioSMSBackend",
            "OPTIONS": {
                "account_sid": "AC" + "0" * 32,
                "auth_token": "secret",
                "from_number": "+15005550006",
                "concurrency": CONCURRENCY,
                "transport": slow_transport(twilio_reply),
            },
        },
        "push": {
            "BACKEND": "notifications.backends.fcm.FCMBackend",
            "OPTIONS": {
                "service_account_info": fcm_service_account(),
                "concurrency": CONCURRENCY,
                "transport": slow_transport(fcm_reply),
            },
        },
    }


def make_due_notices(count: int) -> None:
    """``count`` subscribers, each with a phone, a device and a ``cn`` notice due now."""
    now = timezone.now()
    users = subscribers(count, with_phone=True)
    Device.objects.bulk_create(
        Device(user=user, platform="android", provider="fcm", token=f"tok-{user.pk}")
        for user in users
    )
    renewal = now + dt.timedelta(days=5, hours=12)
    subscriptions = cn_subscriptions(users, make_terms(), now, renewal)
    cn_reminders(subscriptions, now - dt.timedelta(minutes=1))


def send_one_by_one() -> int:
    """The due notices sent as a task per reminder would: one ``dispatch.send`` each."""
    notices = RenewalNotice.objects.filter(status=NoticeStatus.PLANNED).select_related(
        "subscription__user", "subscription__terms"
    )
    sent = 0
    for notice in notices:
        recipient = reachable(notice.subscription.user)
        url = cancel_url(notice)
        send(
            recipient,
            reminder(notice, recipient, url),
            channels=notice.channels,
            idempotency_key=f"notice:{notice.pk}",
            reference=notice_reference(notice.pk),
        )
        RenewalNotice.objects.filter(pk=notice.pk).update(status=NoticeStatus.SENT)
        sent += 1
    return sent


@contextmanager
def backends(config: dict[str, Any]) -> Iterator[None]:
    with override_settings(
        NOTIFICATIONS={"BACKENDS": config, "RECIPIENT_RESOLVER": RESOLVER, "RATE_LIMIT": None}
    ):
        yield


def timed(count: int, config: dict[str, Any], work: Callable[[], Any]) -> tuple[float, int]:
    """Seconds to send ``count`` due notices with ``work``, and the SQL statements it ran."""
    make_due_notices(count)
    with backends(config), CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        work()
        seconds = time.perf_counter() - started
    check_and_clear(count)
    return seconds, len(captured)


def check_and_clear(count: int) -> None:
    given = RenewalNotice.objects.filter(status=NoticeStatus.SENT).count()
    assert given == count, f"{given} of {count} notices given"
    assert Delivery.objects.count() == 2 * count
    RenewalNotice.objects.all().delete()
    Delivery.objects.all().delete()


def in_processes(count: int, workers: int, backends_name: str) -> float:
    """Seconds from the first worker process's sweep start to the last one's end, with
    ``workers`` processes (started together) sweeping the same ``count`` due notices."""
    make_due_notices(count)
    url = f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}"
    start_at = str(time.time() + 3)  # time for every process to import Django first
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", backends_name, start_at],
            env={**os.environ, "DATABASE_URL": url},
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    spans: list[tuple[float, float]] = [
        json.loads(child.communicate(timeout=600)[0].splitlines()[-1]) for child in children
    ]
    check_and_clear(count)
    return max(end for _, end in spans) - min(start for start, _ in spans)


def child(backends_name: str, start_at: float) -> None:
    """A worker process: one sweep from ``start_at``; prints when it began and ended."""
    config = DUMMY if backends_name == "dummy" else slow_providers()
    with backends(config):
        time.sleep(max(0.0, start_at - time.time()))
        started = time.time()
        send_due_notices()
        print(json.dumps([started, time.time()]))


def main(count: int, slow_count: int) -> None:
    creation = connection.creation
    name = creation.create_test_db(verbosity=0, autoclobber=True)
    slow = f"providers at {PROVIDER_DELAY * 1000:.0f} ms, {CONCURRENCY} calls in flight"
    rows: list[tuple[str, int, float, float | None, float]] = []
    try:
        sweep, statements = timed(count, DUMMY, send_due_notices)
        single, _ = timed(min(count, 500), DUMMY, send_one_by_one)
        dummy_single = min(count, 500) / single
        rows.append(("dummy, 1 worker", count, count / sweep, statements / count, dummy_single))
        sweep, statements = timed(slow_count, slow_providers(), send_due_notices)
        single, _ = timed(10, slow_providers(), send_one_by_one)
        slow_single = 10 / single
        rows.append(
            (
                f"{slow}, 1 worker",
                slow_count,
                slow_count / sweep,
                statements / slow_count,
                slow_single,
            )
        )
        if connection.vendor == "postgresql":
            for workers in WORKERS:
                seconds = in_processes(count, workers, "dummy")
                rows.append(
                    (
                        f"dummy, {workers} worker processes",
                        count,
                        count / seconds,
                        None,
                        dummy_single,
                    )
                )
                seconds = in_processes(slow_count, workers, "slow")
                rows.append(
                    (
                        f"{slow}, {workers} worker processes",
                        slow_count,
                        slow_count / seconds,
                        None,
                        slow_single,
                    )
                )
    finally:
        creation.destroy_test_db(name, verbosity=0)
    print(f"\nsend_due_notices on {connection.vendor}; a cn notice = 1 SMS + 1 push\n")
    header = ("backends", "notices", "sweep/s", "SQL per notice", "one by one/s", "ratio")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, n, rate, per, single_rate in rows:
        statements_cell = "" if per is None else f"{per:.2f}"
        print(
            f"| {label} | {n} | {rate:,.0f} | {statements_cell} | {single_rate:,.1f} "
            f"| {rate / single_rate:.0f}x |"
        )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], float(sys.argv[3]))
    else:
        main(
            int(sys.argv[1]) if len(sys.argv) > 1 else 5000,
            int(sys.argv[2]) if len(sys.argv) > 2 else 2000,
        )
