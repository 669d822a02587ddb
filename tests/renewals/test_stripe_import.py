"""renewals_stripe_import: Stripe's subscriptions brought in, paged, resumable, idempotent;
held at the gate until their users consent."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from freezegun import freeze_time
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from renewals.models import AuditEvent, RenewalNotice, RenewalTerms, Status, Subscription
from renewals.policies import GateRemedy
from renewals.services import RenewalRun, record_consent, renewal_gate, run_due_renewals
from renewals.services.cancellation import GATEWAY_CLOCK_SKEW
from renewals.services.gate import AWAITING_CONSENT
from renewals.services.stripe_import import user_for_customer
from renewals.testing.stripe import (
    FakeStripe,
    Reply,
    Request,
    customer,
    error,
    invoice,
    listing,
    paged,
    price,
    subscription,
)

from .factories import make_evidence, make_subscription, make_terms, make_user

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
PERIOD_START = dt.datetime(2027, 2, 20, 8, tzinfo=dt.UTC)
PERIOD_END = dt.datetime(2027, 3, 20, 8, tzinfo=dt.UTC)
LIST = "/v1/subscriptions"
PRODUCT = {"id": "prod_1", "object": "product", "name": "Example Plus"}


@pytest.fixture
def fake(settings: Settings) -> FakeStripe:
    fake = FakeStripe.install(settings)
    fake.on("GET", "/v1/prices/price_1", price("price_1", product=PRODUCT))
    return fake


def stripe_subscriptions(count: int, **fields: Any) -> list[dict[str, Any]]:
    """``count`` subscriptions, newest first, of customers with users here."""
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"stripe{i}", email=f"stripe{i}@example.com")
        for i in range(count)
    )
    return [
        subscription(
            f"sub_{i:04d}",
            customer=customer(f"cus_{i}", email=user.email.upper()),
            period_start=PERIOD_START,
            period_end=PERIOD_END,
            **fields,
        )
        for i, user in reversed(list(enumerate(users)))
    ]


def run(*args: str) -> str:
    out = StringIO()
    with freeze_time(NOW):
        call_command("renewals_stripe_import", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_a_thousand_subscriptions_imported_twice_are_there_once(fake: FakeStripe) -> None:
    fake.on("GET", LIST, paged(stripe_subscriptions(1000), LIST))

    first = run()
    requests_before = len(fake.requests)
    notices = RenewalNotice.objects.count()
    second = run()

    assert "Imported 1000, linked 0, already here 0" in first
    assert "Imported 0, linked 0, already here 1000" in second
    assert Subscription.objects.count() == 1000
    assert AuditEvent.objects.filter(kind="subscription_imported").count() == 1000
    assert RenewalNotice.objects.count() == notices == 1000
    assert RenewalTerms.objects.count() == 1
    # The second run only lists, ten pages of a hundred.
    again = fake.requests[requests_before:]
    assert [r.path for r in again] == [LIST] * 10
    assert {r.query["limit"] for r in again} == {"100"}
    assert again[1].query["starting_after"] == "sub_0900"


def test_an_import_takes_stripes_term_terms_and_customer(fake: FakeStripe) -> None:
    fake.on("GET", LIST, paged(stripe_subscriptions(1, cancel_at_period_end=True), LIST))
    run("--locale", "en", "--policy", "us-ca", "--time-zone", "America/Los_Angeles")

    imported = Subscription.objects.get()
    assert imported.user.username == "stripe0"  # by email, whatever its case
    assert (imported.gateway, imported.gateway_subscription_id) == ("stripe", "sub_0000")
    assert imported.gateway_customer_id == "cus_0"
    assert (imported.status, imported.auto_renew) == (Status.ACTIVE, False)
    assert (imported.current_period_start, imported.next_renewal_at) == (PERIOD_START, PERIOD_END)
    assert (imported.policy, imported.time_zone) == ("us-ca", "America/Los_Angeles")
    terms = imported.terms
    assert (terms.service_name, terms.amount, terms.currency) == (
        "Example Plus",
        Decimal("20.00"),
        "USD",
    )
    assert (terms.interval, terms.interval_count, terms.trial_days) == ("month", 1, 0)
    assert terms.stripe_price_id == "price_1"
    assert terms.renewal_wording == (
        "Renews automatically at 20.00 USD per month until you switch auto-renewal off."
    )
    assert terms.locale == "en"
    # Stripe's state as of the import, allowing for Stripe's clock to be behind ours.
    assert imported.gateway_event_created == NOW - GATEWAY_CLOCK_SKEW
    event = AuditEvent.objects.get(kind="subscription_imported")
    assert event.data["consent"] == "awaited"


def test_a_trial_keeps_its_end_and_the_notices_are_planned(fake: FakeStripe) -> None:
    trial_end = PERIOD_END
    subs = stripe_subscriptions(1, status="trialing", trial_end=trial_end)
    fake.on("GET", LIST, paged(subs, LIST))
    run()

    imported = Subscription.objects.get()
    assert (imported.status, imported.trial_ends_at) == (Status.TRIALING, trial_end)
    assert imported.notices.get().renewal_at == PERIOD_END


def test_terms_here_that_bill_the_price_are_reused(fake: FakeStripe) -> None:
    mine = make_terms(amount=Decimal("20.00"), currency="USD", stripe_price_id="price_1")
    fake.on("GET", LIST, paged(stripe_subscriptions(2), LIST))
    run()
    assert set(Subscription.objects.values_list("terms", flat=True)) == {mine.pk}


def test_the_wording_of_new_terms_can_be_given(fake: FakeStripe) -> None:
    fake.on("GET", LIST, paged(stripe_subscriptions(1), LIST))
    run("--renewal-wording", "Renews monthly.", "--cancellation-method", "Write to us.")
    terms = Subscription.objects.get().terms
    assert (terms.renewal_wording, terms.cancellation_method) == ("Renews monthly.", "Write to us.")


def test_subscriptions_without_a_user_or_not_live_are_left_out(fake: FakeStripe) -> None:
    orphan = subscription("sub_orphan", customer=customer("cus_x", email="nobody@example.com"))
    unpaid_start = subscription("sub_incomplete", status="incomplete")
    fake.on("GET", LIST, paged([orphan, unpaid_start, *stripe_subscriptions(1)], LIST))

    output = run()

    assert "Imported 1, linked 0, already here 0, not live 1, without a user 1" in output
    assert "sub_orphan" in output
    assert Subscription.objects.count() == 1


def test_subscriptions_terms_cannot_state_are_reported_and_the_import_goes_on(
    fake: FakeStripe,
) -> None:
    two_items = subscription("sub_two_items")
    two_items["items"]["data"].append({**two_items["items"]["data"][0], "id": "si_2"})
    three_seats = subscription("sub_seats")
    three_seats["items"]["data"][0]["quantity"] = 3
    metered = subscription("sub_metered", item_price=price("price_metered"))
    metered["items"]["data"][0]["price"]["recurring"]["usage_type"] = "metered"
    tiered = subscription("sub_tiered")
    tiered["items"]["data"][0]["price"].update(
        id="price_tiered", billing_scheme="tiered", unit_amount=None, unit_amount_decimal=None
    )
    odd = [two_items, three_seats, metered, tiered]
    fake.on("GET", LIST, paged([*odd, *stripe_subscriptions(1)], LIST))

    output = run("--page-size", "2")

    assert "Imported 1, linked 0, already here 0, not live 0, without a user 0, " in output
    assert "not representable 4." in output
    assert "Not imported: sub_two_items: it has 2 items; terms bill one price" in output
    assert "Not imported: sub_seats: its item's quantity is 3; terms bill one unit" in output
    assert "Not imported: sub_metered: Stripe price price_metered is not a recurring" in output
    assert "Not imported: sub_tiered: Stripe price price_tiered is not a recurring" in output
    assert Subscription.objects.get().gateway_subscription_id == "sub_0000"


def test_a_subscription_a_checkout_here_started_is_linked_not_copied(fake: FakeStripe) -> None:
    started_here = make_subscription(gateway="stripe")
    obj = subscription(
        "sub_mine",
        customer=customer("cus_mine"),
        period_start=PERIOD_START,
        period_end=PERIOD_END,
        metadata={"renewals_subscription": str(started_here.pk)},
    )
    fake.on("GET", LIST, paged([obj], LIST))

    assert "Imported 0, linked 1" in run()

    started_here.refresh_from_db()
    assert started_here.gateway_subscription_id == "sub_mine"
    assert started_here.next_renewal_at == PERIOD_END
    assert Subscription.objects.count() == 1


def test_a_stopped_import_resumes_after_the_last_one_imported(fake: FakeStripe) -> None:
    subs = stripe_subscriptions(250)
    pages = paged(subs, LIST)
    stopped: list[Request] = []

    def stop_once_at_the_third_page(request: Request) -> Reply | dict[str, Any]:
        if request.query.get("starting_after") == "sub_0050" and not stopped:
            stopped.append(request)
            return Reply(400, error("Something broke."))
        return pages(request)

    fake.on("GET", LIST, stop_once_at_the_third_page)
    with pytest.raises(CommandError, match=re.escape("Something broke. Run again with --resume")):
        run()
    assert Subscription.objects.count() == 200

    assert "Imported 50, linked 0, already here 0" in run("--resume")
    resumed = [r for r in fake.requests if r.path == LIST][-1]
    assert resumed.query["starting_after"] == "sub_0050"
    assert Subscription.objects.count() == 250


def test_resume_needs_an_earlier_import(fake: FakeStripe) -> None:
    with pytest.raises(CommandError, match="Nothing was imported before"):
        run("--resume")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "xx"], "Unknown rule pack 'xx'"),
        (["--time-zone", "Mars/Base"], "is not an IANA time zone"),
        (["--user-resolver", "no.such.resolver"], "--user-resolver 'no.such.resolver'"),
    ],
)
def test_bad_options_are_refused_before_anything_is_asked(
    fake: FakeStripe, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert fake.requests == []


# --- the gate holds them until their users consent -----------------------------------------


def test_the_gate_holds_an_import_until_its_user_consents(fake: FakeStripe) -> None:
    fake.on("GET", LIST, paged(stripe_subscriptions(1), LIST))
    run()
    imported = Subscription.objects.get()
    give_planned(imported)

    decision = renewal_gate(imported, PERIOD_END)
    assert decision.reasons == (AWAITING_CONSENT,)
    assert decision.remedy == GateRemedy.DEFER

    record_consent(imported, make_evidence(imported.terms), actor=imported.user)
    assert renewal_gate(imported, PERIOD_END).allowed


def test_the_renewal_run_holds_the_draft_at_stripe_until_consent_then_lets_it_go(
    fake: FakeStripe, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    fake.on("GET", LIST, paged(stripe_subscriptions(1), LIST))
    run()
    imported = Subscription.objects.get()
    give_planned(imported)
    fake.on("GET", "/v1/invoices", listing([invoice("in_1", subscription="sub_0000")], ""))
    fake.on("POST", "/v1/invoices/in_1", invoice("in_1", auto_advance=False))

    with freeze_time(PERIOD_END), django_capture_on_commit_callbacks(execute=True):
        assert run_due_renewals() == RenewalRun(deferred=1)

    hold = fake.requests[-1]
    assert (hold.path, hold.form) == ("/v1/invoices/in_1", {"auto_advance": "false"})
    imported.refresh_from_db()
    assert (imported.status, imported.held_invoice_id) == (Status.ON_HOLD, "in_1")

    record_consent(imported, make_evidence(imported.terms), actor=imported.user)
    give_planned(imported)
    next_end = PERIOD_END + dt.timedelta(days=28)
    fake.on("GET", "/v1/invoices/in_1", invoice("in_1", auto_advance=False))
    fake.on("POST", "/v1/invoices/in_1/finalize", invoice("in_1", status="open"))
    fake.on(
        "GET",
        "/v1/subscriptions/sub_0000",
        subscription("sub_0000", period_start=PERIOD_END, period_end=next_end),
    )
    with freeze_time(imported.next_renewal_at), django_capture_on_commit_callbacks(execute=True):
        assert run_due_renewals() == RenewalRun(renewed=1)

    finalize = next(r for r in fake.requests if r.path == "/v1/invoices/in_1/finalize")
    assert finalize.form == {"auto_advance": "true"}
    imported.refresh_from_db()
    assert (imported.status, imported.held_invoice_id) == (Status.ACTIVE, None)
    assert (imported.current_period_start, imported.next_renewal_at) == (PERIOD_END, next_end)


def give_planned(subscription_here: Subscription) -> None:
    """Record its planned notices as given as their windows opened."""
    for notice in subscription_here.notices.filter(status="planned"):
        notice.status = "sent"
        notice.sent_at = max(notice.window_opens_at, notice.created_at)
        notice.save()


def test_an_import_whose_consent_was_revoked_lapses(fake: FakeStripe) -> None:
    fake.on("GET", LIST, paged(stripe_subscriptions(1), LIST))
    run()
    imported = Subscription.objects.get()
    record_consent(imported, make_evidence(imported.terms), actor=imported.user)
    imported.consents.update(revoked_at=NOW)

    decision = renewal_gate(imported, PERIOD_END)
    assert decision.reasons == ("no unrevoked consent to the current terms",)
    assert decision.remedy == GateRemedy.LAPSE


# --- finding the user ----------------------------------------------------------------------


def test_the_user_is_found_by_metadata_then_by_one_email() -> None:
    ann = make_user("ann", email="ann@example.com")
    make_user("twin1", email="twin@example.com")
    make_user("twin2", email="TWIN@example.com")
    assert user_for_customer(customer(metadata={"renewals_user": str(ann.pk)})) == ann
    assert user_for_customer(customer(email="Ann@Example.com")) == ann
    assert user_for_customer(customer(email="twin@example.com")) is None
    assert user_for_customer(customer(email=None)) is None
