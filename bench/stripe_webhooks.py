"""Signed Stripe events per second through the webhook view, beside a trivial Django view.

Run: ``DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres TEST_DB_SUFFIX=_whbench
python bench/stripe_webhooks.py [N]`` (SQLite in memory without DATABASE_URL). Uses
``bench.settings``, creates and migrates a throwaway test database, and makes 1,000
subscriptions billed by Stripe (the gateway over the package's fake Stripe HTTP client,
``renewals.testing.stripe.FakeStripe``, which counts every request the SDK would send). This
script is the URLconf: the package's URLs as a site includes them, and beside them a trivial
view (``csrf_exempt``, answers an empty 200).

N (default 2,000) ``customer.subscription.updated`` events per round, each about one of the
subscriptions, created a second after the one before and carrying Stripe's full subscription
object (about 6 kB), are signed with the endpoint's secret beforehand, as Stripe sends them.
Each is new to the database and newer than the state applied, and the subscription is in
step with Stripe (the change is to a field the package does not mirror, e.g. the payment
method): the steady state of a live site. Django's test ``Client`` posts each through the
whole middleware stack, to the webhook and to the trivial view in turn, for three rounds;
the median round of each is printed, with their ratio, the SQL statements, commits and
Stripe API calls per event. Asserts only that every event was answered 200 and stored as
applied, with nothing failed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("TEST_DB_SUFFIX", "_whbench")

import django

django.setup()

import stripe  # noqa: E402
from bulk import cn_subscriptions, subscribers  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from renewals.models import EventOutcome, StripeEvent, Subscription  # noqa: E402
from renewals.testing.factories import make_terms  # noqa: E402
from renewals.testing.stripe import (  # noqa: E402
    API_KEY,
    WEBHOOK_SECRET,
    FakeStripe,
    event,
    subscription,
)

SUBSCRIPTIONS = 1000
ROUNDS = 3
#: Events per view posted first and not timed: imports, connection set-up, caches.
WARM_UP = 50
#: Events per round whose statements and commits are counted (query capture slows them).
SAMPLE = 100
#: Transaction control, counted as commits rather than statements.
TRANSACTION_CONTROL = ("BEGIN", "COMMIT")


@csrf_exempt
def trivial(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


urlpatterns = [
    path("trivial/", trivial),
    path("", include("renewals.urls")),
]


def make_events(count: int) -> list[tuple[str, str]]:
    """``count`` signed ``customer.subscription.updated`` events (body, signature header),
    each about the next subscription in turn and created a second after the one before."""
    subscriptions = list(
        Subscription.objects.order_by("pk").values_list(
            "gateway_subscription_id", "current_period_start", "next_renewal_at"
        )
    )
    first = int(time.time()) - count
    events = []
    for i in range(count):
        stripe_id, start, end = subscriptions[i % len(subscriptions)]
        obj = subscription(stripe_id, period_start=start, period_end=end)
        payload = event(
            "customer.subscription.updated",
            obj,
            id=f"evt_bench_{first}_{i}",
            created=first + i,
            previous_attributes={"default_payment_method": f"pm_old_{i}"},
        )
        body = json.dumps(payload)
        header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET)
        events.append((body, header))
    return events


def post_all(client: Client, url: str, events: list[tuple[str, str]]) -> float:
    """Post every event to ``url``; the events per second."""
    started = time.perf_counter()
    for body, header in events:
        response = client.post(
            url, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
        assert response.status_code == 200, response.status_code
    return len(events) / (time.perf_counter() - started)


@contextmanager
def counted_commits() -> Iterator[list[int]]:
    """Count the default connection's commits meanwhile, in the one-item list it yields."""
    count = [0]
    real_commit = connection.commit

    def commit() -> None:
        count[0] += 1
        real_commit()

    connection.commit = commit  # type: ignore[method-assign]
    try:
        yield count
    finally:
        del connection.commit


def measure(count: int, fake: FakeStripe) -> dict[str, Any]:
    client = Client()
    webhook = "/stripe/webhook/"
    events = make_events(WARM_UP + ROUNDS * (SAMPLE + count))
    post_all(client, webhook, events[:WARM_UP])
    post_all(client, "/trivial/", events[:WARM_UP])
    fake.requests.clear()
    rates: dict[str, list[float]] = {"webhook": [], "trivial": []}
    statements = commits = 0
    position = WARM_UP
    for _round in range(ROUNDS):
        sample = events[position : position + SAMPLE]
        with CaptureQueriesContext(connection) as captured, counted_commits() as round_commits:
            post_all(client, webhook, sample)
        commits += round_commits[0]
        statements += sum(1 for q in captured if q["sql"].split()[0] not in TRANSACTION_CONTROL)
        timed = events[position + SAMPLE : position + SAMPLE + count]
        position += SAMPLE + count
        rates["trivial"].append(post_all(client, "/trivial/", timed))
        rates["webhook"].append(post_all(client, webhook, timed))
    posted = WARM_UP + ROUNDS * (SAMPLE + count)
    applied = StripeEvent.objects.filter(outcome=EventOutcome.APPLIED).count()
    assert applied == posted, f"{applied} of {posted} events applied"
    assert not StripeEvent.objects.filter(processed_at__isnull=True).exists()
    return {
        "webhook": statistics.median(rates["webhook"]),
        "trivial": statistics.median(rates["trivial"]),
        "statements": statements / (ROUNDS * SAMPLE),
        "commits": commits / (ROUNDS * SAMPLE),
        "api_calls": len(fake.requests) / (ROUNDS * (SAMPLE + count)),
    }


def main(count: int) -> None:
    fake = FakeStripe()
    gateway = {
        "BACKEND": "renewals.gateways.stripe.StripeGateway",
        "OPTIONS": {"api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET, "http_client": fake},
    }
    creation = connection.creation
    name = creation.create_test_db(verbosity=0, autoclobber=True)
    connection.settings_dict["CONN_MAX_AGE"] = None  # persistent, as a production site runs
    try:
        with override_settings(ROOT_URLCONF=__name__, RENEWALS={"GATEWAY": gateway}):
            now = timezone.now().replace(microsecond=0)
            rows = cn_subscriptions(
                subscribers(SUBSCRIPTIONS), make_terms(), now, now + dt.timedelta(days=30)
            )
            Subscription.objects.filter(pk__in=[row.pk for row in rows]).update(gateway="stripe")
            for row in rows:
                row.gateway_subscription_id = f"sub_bench_{row.pk}"
            Subscription.objects.bulk_update(rows, ["gateway_subscription_id"])
            figures = measure(count, fake)
    finally:
        creation.destroy_test_db(name, verbosity=0)
    ratio = figures["webhook"] / figures["trivial"]
    print(
        f"\nStripe webhook on {connection.vendor}: {count} signed customer.subscription.updated "
        f"events per round, median of {ROUNDS} rounds, {SUBSCRIPTIONS} subscriptions\n"
    )
    print("| view | events/s |")
    print("|---|---|")
    print(f"| trivial Django view | {figures['trivial']:.0f} |")
    print(f"| stripe/webhook/ | {figures['webhook']:.0f} |")
    print(f"\nratio webhook / trivial: {ratio:.3f}")
    print(
        f"per event: {figures['statements']:.1f} SQL statements, {figures['commits']:.1f} "
        f"commits, {figures['api_calls']:.1f} Stripe API calls"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
