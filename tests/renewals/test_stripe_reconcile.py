"""renewals_reconcile --stripe: the events and state Stripe's webhooks did not bring."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from freezegun import freeze_time
from pytest_django import Settings

from renewals.models import AuditEvent, Consent, Status, StripeEvent, Subscription
from renewals.services import subscribe
from renewals.testing.stripe import FakeStripe, Reply, error, event, listing, paged, subscription

from .factories import make_evidence, make_subscription, make_terms, make_user

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2027, 3, 1, 12, tzinfo=dt.UTC)
PERIOD_START = dt.datetime(2027, 2, 20, 8, tzinfo=dt.UTC)
PERIOD_END = dt.datetime(2027, 3, 20, 8, tzinfo=dt.UTC)
EVENTS = "/v1/events"
SUBSCRIPTIONS = "/v1/subscriptions"


@pytest.fixture
def fake(settings: Settings) -> FakeStripe:
    fake = FakeStripe.install(settings)
    fake.on("GET", EVENTS, listing([], EVENTS))
    fake.on("GET", SUBSCRIPTIONS, listing([], SUBSCRIPTIONS))
    return fake


@pytest.fixture
def local(fake: FakeStripe) -> Subscription:
    """A subscription started here with consent, at Stripe as ``sub_1``."""
    terms = make_terms()
    with freeze_time(PERIOD_START):
        started = subscribe(make_user(), terms, make_evidence(terms), time_zone="UTC")
    Subscription.objects.filter(pk=started.pk).update(
        gateway_subscription_id="sub_1", next_renewal_at=PERIOD_END
    )
    started.refresh_from_db()
    fake.on("GET", SUBSCRIPTIONS, listing([at_stripe()], SUBSCRIPTIONS))
    return started


def at_stripe(**fields: Any) -> dict[str, Any]:
    return subscription(
        "sub_1", period_start=PERIOD_START, period_end=PERIOD_END, created=PERIOD_START, **fields
    )


def reconcile(*args: str) -> str:
    out = StringIO()
    with freeze_time(NOW):
        call_command("renewals_reconcile", "--stripe", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_a_portal_cancellation_whose_webhook_never_came_is_applied(
    fake: FakeStripe, local: Subscription
) -> None:
    cancelled = event(
        "customer.subscription.updated",
        at_stripe(cancel_at_period_end=True),
        id="evt_portal",
        created=NOW - dt.timedelta(hours=1),
        previous_attributes={"cancel_at_period_end": False},
    )
    fake.on("GET", EVENTS, listing([cancelled], EVENTS))
    fake.on("GET", SUBSCRIPTIONS, listing([at_stripe(cancel_at_period_end=True)], SUBSCRIPTIONS))

    output = reconcile()

    assert "Stripe: 1 missed events applied, 0 subscriptions repaired, 0 linked." in output
    local.refresh_from_db()
    assert not local.auto_renew
    assert Consent.objects.get(subscription=local).revoked_via == "gateway"
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.processed_at is not None) == ("evt_portal", True)


@pytest.mark.parametrize(("args", "hours"), [((), 72), (("--since-hours", "6"), 6)])
def test_the_events_asked_for_are_the_handled_types_since_the_window(
    fake: FakeStripe, local: Subscription, args: tuple[()] | tuple[str, str], hours: int
) -> None:
    reconcile(*args)
    ask = fake.requests[0]
    assert ask.path == EVENTS
    assert ask.query["created[gte]"] == str(int((NOW - dt.timedelta(hours=hours)).timestamp()))
    types = {value for key, value in ask.query.items() if key.startswith("types[")}
    assert {"customer.subscription.updated", "invoice.created", "invoice.paid"} <= types


def test_events_processed_here_are_not_applied_again_and_the_rest_oldest_first(
    fake: FakeStripe, local: Subscription
) -> None:
    older = event(
        "invoice.paid",
        {"id": "in_1", "object": "invoice", "billing_reason": "subscription_cycle"},
        id="evt_old",
        created=NOW - dt.timedelta(hours=3),
    )
    newer = event("invoice.upcoming", {"object": "invoice"}, id="evt_new", created=NOW)
    seen = event("invoice.upcoming", {"object": "invoice"}, id="evt_seen", created=NOW)
    StripeEvent.objects.create(
        event_id="evt_seen",
        type="invoice.upcoming",
        livemode=False,
        created=NOW,
        payload=seen,
        received_at=NOW,
        processed_at=NOW,
    )
    fake.on("GET", EVENTS, paged([newer, seen, older], EVENTS))

    assert "2 missed events applied" in reconcile()
    stored = StripeEvent.objects.exclude(event_id="evt_seen").order_by("pk")
    assert list(stored.values_list("event_id", flat=True)) == ["evt_old", "evt_new"]


def test_an_event_that_fails_is_kept_and_reported(fake: FakeStripe, local: Subscription) -> None:
    broken = event("customer.subscription.updated", {"id": "sub_1"}, id="evt_broken")
    fake.on("GET", EVENTS, listing([broken], EVENTS))

    output = reconcile()

    assert "1 events failed" in output
    assert "renewals_stripe_reprocess --failed" in output
    assert StripeEvent.objects.get().processed_at is None


def test_state_that_drifted_is_brought_in_line_through_the_webhook_sync(
    fake: FakeStripe, local: Subscription
) -> None:
    fake.on("GET", SUBSCRIPTIONS, paged([at_stripe(status="past_due")], SUBSCRIPTIONS))

    assert "0 missed events applied, 1 subscriptions repaired" in reconcile()

    local.refresh_from_db()
    assert local.status == Status.PAST_DUE
    assert not StripeEvent.objects.exists()  # Stripe sent no event: none is stored
    assert AuditEvent.objects.filter(subscription=local, kind="gateway_updated").exists()


def test_state_in_line_is_left_alone(fake: FakeStripe, local: Subscription) -> None:
    fake.on("GET", SUBSCRIPTIONS, paged([at_stripe()], SUBSCRIPTIONS))
    before = local.updated_at
    assert "0 subscriptions repaired" in reconcile()
    local.refresh_from_db()
    assert local.updated_at == before


def test_a_subscription_ended_at_stripe_is_fetched_and_ended_here(
    fake: FakeStripe, local: Subscription
) -> None:
    fake.on("GET", SUBSCRIPTIONS, listing([], SUBSCRIPTIONS))  # Stripe lists no ended ones
    fake.on("GET", "/v1/subscriptions/sub_1", at_stripe(status="canceled", canceled_at=NOW))

    assert "1 subscriptions repaired" in reconcile()

    local.refresh_from_db()
    assert local.status == Status.CANCELED
    assert fake.calls()[-1] == "GET /v1/subscriptions/sub_1"


def test_a_checkout_whose_stripe_id_was_lost_is_linked(fake: FakeStripe) -> None:
    started = make_subscription(gateway="stripe", trial_ends_at=PERIOD_START)
    obj = subscription(
        "sub_lost",
        period_start=PERIOD_START,
        period_end=PERIOD_END,
        metadata={"renewals_subscription": str(started.pk)},
    )
    fake.on("GET", SUBSCRIPTIONS, listing([obj], SUBSCRIPTIONS))

    assert "1 linked" in reconcile()

    started.refresh_from_db()
    assert (started.gateway_subscription_id, started.next_renewal_at) == ("sub_lost", PERIOD_END)
    assert started.trial_ends_at == PERIOD_START  # the trial it had stays on record


def test_stripe_subscriptions_unknown_here_are_reported(fake: FakeStripe) -> None:
    fake.on("GET", SUBSCRIPTIONS, listing([subscription("sub_other")], SUBSCRIPTIONS))
    output = reconcile()
    assert "1 Stripe subscriptions are not here" in output
    assert "sub_other" in output


def test_a_stripe_outage_stops_the_repair_with_an_error(
    fake: FakeStripe, local: Subscription
) -> None:
    fake.on("GET", EVENTS, Reply(503, error("Down.", type="api_error")))
    with pytest.raises(CommandError, match=re.escape("The Stripe repair stopped. Stripe: Down.")):
        reconcile()


def test_without_stripe_nothing_is_asked_of_stripe(fake: FakeStripe, local: Subscription) -> None:
    call_command("renewals_reconcile", stdout=StringIO())
    assert fake.requests == []


def test_the_window_is_bounded() -> None:
    with pytest.raises(CommandError, match="--since-hours"):
        call_command("renewals_reconcile", "--stripe", "--since-hours", "0")
