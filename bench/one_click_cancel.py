"""Latency of the one-click cancel POST, end to end through Django, on the configured database.

Run: ``DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres TEST_DB_SUFFIX=_ocbench
python bench/one_click_cancel.py [N]`` (SQLite in memory without DATABASE_URL). Uses
``bench.settings``, creates and migrates a throwaway test database, makes N subscriptions
(default 1000) with auto-renewal on, a consent and a reminder's notice each, then posts each
notice's one-click link once with Django's test ``Client`` (the middleware, the rate limit in
the local-memory cache, the token, ``cancel_auto_renewal`` with the local gateway's sync
after commit, the confirmation task put on django-q2's ORM broker) and opens the
confirmation page it redirects to. Each request comes from an address of its own, as
different users' would.

It does so twice: with persistent database connections (``CONN_MAX_AGE = None``, or a
pool), as a production site runs, and with a new connection per request (Django's default
``CONN_MAX_AGE = 0``; django-q2's ORM broker then closes the request's connection before it
enqueues, so each POST connects twice).

Prints the percentiles of each; asserts nothing about timings.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("TEST_DB_SUFFIX", "_ocbench")

import django

django.setup()

from bulk import cn_reminders, cn_subscriptions, subscribers  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_q.conf import Conf  # noqa: E402

from renewals.models import Consent, Subscription  # noqa: E402
from renewals.testing.factories import make_terms  # noqa: E402
from renewals.tokens import one_click_token  # noqa: E402

#: Requests made first and not timed: imports, template loading, connection set-up.
WARM_UP = 20


def make_links(count: int) -> list[str]:
    """``count`` subscriptions with auto-renewal on, a consent and a notice; their links."""
    now = timezone.now()
    terms = make_terms()
    subscriptions = cn_subscriptions(subscribers(count), terms, now, now + dt.timedelta(days=5))
    Consent.objects.bulk_create(
        Consent(
            subscription=subscription,
            user=subscription.user,
            terms=terms,
            terms_hash=terms.content_hash,
            policy="cn",
            granted_at=now,
            channel="web",
            form_id="bench",
            control_initially_unticked=True,
        )
        for subscription in subscriptions
    )
    notices = cn_reminders(subscriptions, now, status="sent")
    return [reverse("renewals:one_click_cancel", args=[one_click_token(n)]) for n in notices]


def address(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def timed(request: Callable[..., object], path: str, remote_addr: str) -> float:
    """Milliseconds ``request(path)`` takes from ``remote_addr``."""
    started = time.perf_counter()
    request(path, REMOTE_ADDR=remote_addr)
    return (time.perf_counter() - started) * 1000


def percentiles(samples: list[float]) -> tuple[float, float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98], max(samples)


def measure(count: int) -> tuple[list[float], list[float], int]:
    """Post ``count`` fresh links, opening each one's confirmation after it: the POST and
    GET milliseconds, and the SQL statements of one POST."""
    links = make_links(WARM_UP + count)
    client = Client()
    for i, link in enumerate(links[: WARM_UP - 1]):
        client.post(link, REMOTE_ADDR=address(i))
        client.get(link, REMOTE_ADDR=address(i))
    with CaptureQueriesContext(connection) as captured:
        client.post(links[WARM_UP - 1], REMOTE_ADDR=address(WARM_UP - 1))
    queries = len(captured)  # before the next request empties the log
    posts, gets = [], []
    for i, link in enumerate(links[WARM_UP:], start=WARM_UP):
        posts.append(timed(client.post, link, address(i)))
        gets.append(timed(client.get, link, address(i)))
    left_on = Subscription.objects.filter(auto_renew=True).count()
    assert left_on == 0, f"{left_on} subscriptions still renew"
    return posts, gets, queries


def main(count: int) -> None:
    # Production puts the confirmation task on the broker; bench.settings runs it inline.
    Conf.SYNC = False
    logging.getLogger("django-q").setLevel(logging.WARNING)  # not a line per task queued
    creation = connection.creation
    name = creation.create_test_db(verbosity=0, autoclobber=True)
    rows = []
    try:
        for label, max_age in (("persistent", None), ("one per request", 0)):
            connection.close()
            connection.settings_dict["CONN_MAX_AGE"] = max_age
            posts, gets, queries = measure(count)
            rows.append((label, "POST (cancel)", posts))
            rows.append((label, "GET (confirmation)", gets))
    finally:
        creation.destroy_test_db(name, verbosity=0)
    print(f"\none-click cancel on {connection.vendor}, {count} links per row, local gateway")
    print(f"SQL statements per POST: {queries}\n")
    print("| connections | request | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    for connections, request, samples in rows:
        cells = " | ".join(f"{value:.1f}" for value in percentiles(samples))
        print(f"| {connections} | {request} | {cells} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
