"""From the consent form to a Stripe subscription: consent first, then Stripe."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from freezegun import freeze_time
from pytest_django import Settings

from renewals.exceptions import (
    ConsentMissing,
    GatewayRefused,
    GatewayUnavailable,
    PriceMismatch,
)
from renewals.models import AuditEvent, Status, Subscription
from renewals.services import subscribe, trial_available
from renewals.services.stripe_checkout import start_stripe_subscription
from renewals.testing.stripe import FakeStripe, customer, error, price, subscription

from .factories import make_evidence, make_subscription, make_terms, make_user

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC)
STRIPE_END = dt.datetime(2027, 4, 10, 1, 0, 5, tzinfo=dt.UTC)  # Stripe's clock, seconds on


@pytest.fixture
def fake(settings: Settings) -> FakeStripe:
    fake = FakeStripe.install(settings)
    fake.on("GET", "/v1/prices/price_1", price("price_1", unit_amount=2500, currency="usd"))
    fake.on("POST", "/v1/customers", customer("cus_new"))
    fake.on(
        "POST",
        "/v1/subscriptions",
        subscription("sub_new", customer="cus_new", period_start=NOW, period_end=STRIPE_END),
    )
    return fake


def started(**terms_fields: Any) -> Subscription:
    fields = {"currency": "USD", "amount": Decimal("25.00"), "stripe_price_id": "price_1"}
    terms = make_terms(**{**fields, **terms_fields})
    with freeze_time(NOW):
        return subscribe(
            make_user(email="ann@example.com"), terms, make_evidence(terms), time_zone="UTC"
        )


def test_the_stripe_subscription_bills_the_consented_terms(fake: FakeStripe) -> None:
    local = started()
    consent = local.consents.get()

    with freeze_time(NOW):
        start_stripe_subscription(local, payment_method="pm_card")

    assert fake.calls() == [
        "GET /v1/prices/price_1",
        "POST /v1/customers",
        "POST /v1/subscriptions",
    ]
    _, new_customer, create = fake.requests
    assert new_customer.form == {
        "email": "ann@example.com",
        "metadata[renewals_user]": str(local.user_id),
    }
    assert create.form == {
        "customer": "cus_new",
        "items[0][price]": "price_1",
        "cancel_at_period_end": "false",
        "payment_behavior": "error_if_incomplete",
        "default_payment_method": "pm_card",
        "metadata[renewals_subscription]": str(local.pk),
        "metadata[renewals_consent]": str(consent.pk),
        "metadata[renewals_terms_hash]": local.terms.content_hash,
    }
    assert new_customer.idempotency_key == f"renewals:test:{local.pk}:customer"
    assert create.idempotency_key == f"renewals:test:{local.pk}:create"


def test_the_ids_and_stripes_term_are_kept_and_its_notices_planned(fake: FakeStripe) -> None:
    local = started()
    with freeze_time(NOW):
        linked = start_stripe_subscription(local)

    linked.refresh_from_db()
    assert (linked.gateway_customer_id, linked.gateway_subscription_id) == ("cus_new", "sub_new")
    assert (linked.current_period_start, linked.next_renewal_at) == (NOW, STRIPE_END)
    assert {notice.renewal_at for notice in linked.notices.filter(status="planned")} == {STRIPE_END}
    event = AuditEvent.objects.get(subscription=linked, kind="stripe_subscription_linked")
    assert event.data["stripe_subscription"] == "sub_new"


def test_a_trial_goes_to_stripe_and_an_existing_customer_is_used(fake: FakeStripe) -> None:
    local = started(trial_days=7)
    fake.on(
        "POST",
        "/v1/subscriptions",
        subscription(
            "sub_new", status="trialing", trial_end=local.trial_ends_at, period_end=STRIPE_END
        ),
    )
    with freeze_time(NOW):
        start_stripe_subscription(local, customer="cus_known")

    create = fake.requests[-1]
    assert "POST /v1/customers" not in fake.calls()
    assert create.form["customer"] == "cus_known"
    assert local.trial_ends_at is not None
    assert create.form["trial_end"] == str(int(local.trial_ends_at.timestamp()))
    local.refresh_from_db()
    assert local.status == Status.TRIALING


def test_without_consent_nothing_is_created_at_stripe(fake: FakeStripe) -> None:
    local = make_subscription(gateway="stripe", terms=make_terms(stripe_price_id="price_1"))
    with pytest.raises(ConsentMissing):
        start_stripe_subscription(local)
    assert fake.requests == []


def test_a_price_that_charges_otherwise_is_refused_before_anything_is_created(
    fake: FakeStripe,
) -> None:
    local = started(amount=Decimal("19.00"))
    with pytest.raises(PriceMismatch, match=re.escape("amount is 25.00 at Stripe, 19.00 in terms")):
        start_stripe_subscription(local)
    assert fake.calls() == ["GET /v1/prices/price_1"]
    local.refresh_from_db()
    assert local.status == Status.CANCELED


def test_a_declined_card_ends_the_subscription_here_and_keeps_the_trial(fake: FakeStripe) -> None:
    local = started(trial_days=7)
    fake.on(
        "POST",
        "/v1/subscriptions",
        error("Your card was declined.", type="card_error", code="card_declined"),
        status=402,
    )
    with pytest.raises(GatewayRefused, match="Your card was declined"):
        start_stripe_subscription(local)

    local.refresh_from_db()
    assert (local.status, local.trial_ends_at) == (Status.CANCELED, None)
    assert not local.notices.filter(status="planned").exists()
    assert trial_available(local.user, local.terms)
    event = AuditEvent.objects.get(subscription=local, kind="stripe_checkout_refused")
    assert event.data["code"] == "card_declined"


def test_after_an_outage_the_same_call_sends_the_same_keys(fake: FakeStripe) -> None:
    local = started()
    ok = subscription("sub_new", customer="cus_new", period_end=STRIPE_END)
    fake.on("POST", "/v1/subscriptions", error("Down.", type="api_error"), status=503)
    with pytest.raises(GatewayUnavailable):
        start_stripe_subscription(local)
    local.refresh_from_db()
    assert (local.status, local.gateway_subscription_id) == (Status.ACTIVE, "")

    fake.on("POST", "/v1/subscriptions", ok)
    start_stripe_subscription(local)

    keys = {r.idempotency_key for r in fake.requests if r.path == "/v1/subscriptions"}
    assert keys == {f"renewals:test:{local.pk}:create"}
    local.refresh_from_db()
    assert local.gateway_subscription_id == "sub_new"


def test_a_subscription_at_stripe_already_is_returned_as_it_is(fake: FakeStripe) -> None:
    local = started()
    local.gateway_subscription_id = "sub_1"
    local.save()
    assert start_stripe_subscription(local) == local
    assert fake.requests == []


def test_only_a_subscription_billed_by_stripe_starts_there(
    fake: FakeStripe, settings: Settings
) -> None:
    local = {"BACKEND": "renewals.gateways.local.LocalGateway"}
    settings.RENEWALS = {**settings.RENEWALS, "GATEWAYS": {"local": local}}
    with pytest.raises(TypeError, match="billed by 'local'"):
        start_stripe_subscription(make_subscription(gateway="local"))
