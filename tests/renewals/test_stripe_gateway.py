"""StripeGateway on the real SDK, against the fake Stripe API: what it sends, with which
idempotency keys, and how Stripe's answers come back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import stripe
from django.core.exceptions import ImproperlyConfigured
from freezegun import freeze_time
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from renewals.checks import check_gateway
from renewals.exceptions import GatewayRefused, GatewayUnavailable
from renewals.gateways import get_gateway
from renewals.gateways.base import Period
from renewals.gateways.stripe import (
    AUTO_RENEW_CHANGES,
    StripeGateway,
    minor_units,
    price_terms,
    subscription_state,
)
from renewals.models import AuditEvent, Status, Subscription
from renewals.services import (
    RenewalRun,
    cancel_auto_renewal,
    resume_auto_renewal,
    run_due_renewals,
    subscribe,
)
from renewals.testing.stripe import (
    API_KEY,
    FakeStripe,
    Reply,
    error,
    invoice,
    listing,
    price,
    subscription,
)

from .factories import make_evidence, make_subscription, make_terms, make_user

pytestmark = pytest.mark.django_db

PERIOD_START = dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC)
PERIOD_END = dt.datetime(2027, 4, 10, 1, tzinfo=dt.UTC)
DRAFTS = "/v1/invoices"


@pytest.fixture
def fake(settings: Settings) -> FakeStripe:
    return FakeStripe.install(settings)


@pytest.fixture
def gateway(fake: FakeStripe) -> StripeGateway:
    gateway = get_gateway()
    assert isinstance(gateway, StripeGateway)
    return gateway


@pytest.fixture
def sub(gateway: StripeGateway) -> Subscription:
    return make_subscription(
        gateway="stripe", gateway_customer_id="cus_1", gateway_subscription_id="sub_1"
    )


def consented(gateway: StripeGateway) -> Subscription:
    """A subscription started with consent (through ``subscribe``) and at Stripe."""
    terms = make_terms()
    started = subscribe(make_user(), terms, make_evidence(terms), time_zone="UTC")
    started.gateway_subscription_id = "sub_1"
    started.save()
    return started


# --- auto-renewal ----------------------------------------------------------------------------


def test_turning_auto_renewal_off_cancels_at_period_end_and_voids_the_renewal_draft(
    fake: FakeStripe, sub: Subscription
) -> None:
    fake.on("POST", "/v1/subscriptions/sub_1", subscription(cancel_at_period_end=True))
    fake.on(
        "GET",
        DRAFTS,
        listing([invoice("in_manual", billing_reason="manual"), invoice("in_1")], DRAFTS),
    )
    fake.on("GET", "/v1/invoices/in_1", invoice("in_1"))
    fake.on("POST", "/v1/invoices/in_1/finalize", invoice("in_1", status="open"))
    fake.on("POST", "/v1/invoices/in_1/void", invoice("in_1", status="void"))

    get_gateway().set_auto_renew(sub, False)

    update, drafts, _, finalize, void = fake.requests
    assert update.form == {
        "cancel_at_period_end": "true",
        "metadata[renewals_consent]": "",
        "metadata[renewals_terms_hash]": "",
    }
    assert update.idempotency_key == f"renewals:test:{sub.pk}:auto_renew_off:none"
    assert drafts.query == {"subscription": "sub_1", "status": "draft", "limit": "10"}
    # Stripe voids only finalized invoices: finalized first, without charging.
    assert finalize.form == {"auto_advance": "false"}
    assert finalize.idempotency_key == f"renewals:test:{sub.pk}:finalize_to_void:in_1"
    assert void.idempotency_key == f"renewals:test:{sub.pk}:void:in_1"


def test_turning_off_voids_the_held_draft_without_looking_it_up(
    fake: FakeStripe, sub: Subscription
) -> None:
    sub.held_invoice_id = "in_held"
    fake.on("POST", "/v1/subscriptions/sub_1", subscription(cancel_at_period_end=True))
    fake.on("GET", "/v1/invoices/in_held", invoice("in_held", status="open", auto_advance=False))
    fake.on("POST", "/v1/invoices/in_held/void", invoice("in_held", status="void"))

    get_gateway().set_auto_renew(sub, False)

    assert fake.calls() == [
        "POST /v1/subscriptions/sub_1",
        "GET /v1/invoices/in_held",
        "POST /v1/invoices/in_held/void",
    ]
    sub.refresh_from_db()
    assert sub.held_invoice_id is None


def test_a_renewal_invoice_already_paid_is_left_alone(
    fake: FakeStripe, sub: Subscription, caplog: pytest.LogCaptureFixture
) -> None:
    sub.held_invoice_id = "in_paid"
    fake.on("POST", "/v1/subscriptions/sub_1", subscription(cancel_at_period_end=True))
    fake.on("GET", "/v1/invoices/in_paid", invoice("in_paid", status="paid"))

    get_gateway().set_auto_renew(sub, False)

    assert fake.calls()[-1] == "GET /v1/invoices/in_paid"
    assert "was paid before it could be voided" in caplog.text


def test_a_draft_that_finalizing_pays_is_not_voided(
    fake: FakeStripe, sub: Subscription, caplog: pytest.LogCaptureFixture
) -> None:
    """Finalizing a free or credit-covered draft pays it, and Stripe voids no paid invoice."""
    sub.held_invoice_id = "in_free"
    fake.on("POST", "/v1/subscriptions/sub_1", subscription(cancel_at_period_end=True))
    fake.on("GET", "/v1/invoices/in_free", invoice("in_free"))
    fake.on("POST", "/v1/invoices/in_free/finalize", invoice("in_free", status="paid"))

    get_gateway().set_auto_renew(sub, False)

    assert fake.calls()[-1] == "POST /v1/invoices/in_free/finalize"
    assert "was paid before it could be voided" in caplog.text
    sub.refresh_from_db()
    assert sub.held_invoice_id is None


def test_turning_on_clears_cancel_at_period_end_with_the_consent_as_metadata(
    fake: FakeStripe, gateway: StripeGateway
) -> None:
    started = consented(gateway)
    consent = started.consents.get()
    fake.on("POST", "/v1/subscriptions/sub_1", subscription())

    gateway.set_auto_renew(started, True)

    [update] = fake.requests
    assert update.form == {
        "cancel_at_period_end": "false",
        "metadata[renewals_consent]": str(consent.pk),
        "metadata[renewals_terms_hash]": started.terms.content_hash,
    }
    assert update.idempotency_key == f"renewals:test:{started.pk}:auto_renew_on:none"


def test_each_switch_has_its_own_key_and_a_retry_the_same(
    fake: FakeStripe,
    gateway: StripeGateway,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    started = consented(gateway)
    fake.on("POST", "/v1/subscriptions/sub_1", subscription())
    fake.on("GET", DRAFTS, listing([], DRAFTS))
    with django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(started, actor=None, via="manage_page")
    with django_capture_on_commit_callbacks(execute=True):
        resume_auto_renewal(started, evidence=make_evidence(started.terms), actor=started.user)
    with django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(started, actor=None, via="manage_page")
    gateway.set_auto_renew(started, False)  # a retried sync

    keys = [r.idempotency_key for r in fake.requests if r.method == "POST"]
    changes = AuditEvent.objects.filter(subscription=started, kind__in=AUTO_RENEW_CHANGES)
    off, on, off_again = changes.order_by("sequence").values_list("sequence", flat=True)
    assert keys == [
        f"renewals:test:{started.pk}:auto_renew_off:{off}",
        f"renewals:test:{started.pk}:auto_renew_on:{on}",
        f"renewals:test:{started.pk}:auto_renew_off:{off_again}",
        f"renewals:test:{started.pk}:auto_renew_off:{off_again}",
    ]


def test_a_subscription_not_at_stripe_yet_has_nothing_to_sync(
    fake: FakeStripe, gateway: StripeGateway
) -> None:
    local = make_subscription(gateway="stripe")
    gateway.set_auto_renew(local, False)
    assert fake.requests == []


# --- holding and releasing -------------------------------------------------------------------


def test_hold_keeps_the_renewal_draft_from_advancing_and_remembers_it(
    fake: FakeStripe, gateway: StripeGateway, sub: Subscription
) -> None:
    fake.on("GET", DRAFTS, listing([invoice("in_1")], DRAFTS))
    fake.on("POST", "/v1/invoices/in_1", invoice("in_1", auto_advance=False))

    gateway.hold_renewal(sub, PERIOD_START)

    hold = fake.requests[-1]
    assert hold.form == {"auto_advance": "false"}
    assert hold.idempotency_key == f"renewals:test:{sub.pk}:hold:in_1"
    sub.refresh_from_db()
    assert sub.held_invoice_id == "in_1"


def test_hold_before_stripe_made_the_draft_changes_nothing(
    fake: FakeStripe, gateway: StripeGateway, sub: Subscription
) -> None:
    fake.on("GET", DRAFTS, listing([invoice("in_2", billing_reason="subscription_update")], DRAFTS))
    gateway.hold_renewal(sub, PERIOD_START)
    assert fake.calls() == ["GET /v1/invoices"]
    sub.refresh_from_db()
    assert sub.held_invoice_id is None


@pytest.mark.parametrize(
    ("held", "calls", "form"),
    [
        (invoice("in_1"), ["GET", "POST /v1/invoices/in_1/finalize"], {"auto_advance": "true"}),
        (
            invoice("in_1", status="open", auto_advance=False),
            ["GET", "POST /v1/invoices/in_1"],
            {"auto_advance": "true"},
        ),
        (invoice("in_1", status="paid"), ["GET"], None),
    ],
    ids=["draft", "open", "paid"],
)
def test_release_lets_stripe_collect_the_held_invoice(
    fake: FakeStripe,
    gateway: StripeGateway,
    sub: Subscription,
    held: dict[str, Any],
    calls: list[str],
    form: dict[str, str] | None,
) -> None:
    sub.held_invoice_id = "in_1"
    fake.on("GET", "/v1/invoices/in_1", held)
    fake.on("POST", "/v1/invoices/in_1/finalize", invoice("in_1", status="open"))
    fake.on("POST", "/v1/invoices/in_1", invoice("in_1", status="open"))

    gateway.release_renewal(sub, PERIOD_START)

    assert [c if c.startswith("POST") else "GET" for c in fake.calls()] == calls
    if form:
        assert fake.requests[-1].form == form
    sub.refresh_from_db()
    assert sub.held_invoice_id is None


# --- renewing --------------------------------------------------------------------------------


def test_renew_returns_the_term_stripe_bills_from_its_items(
    fake: FakeStripe, gateway: StripeGateway, sub: Subscription
) -> None:
    fake.on(
        "GET",
        "/v1/subscriptions/sub_1",
        subscription(period_start=PERIOD_START, period_end=PERIOD_END),
    )
    assert gateway.renew(sub, PERIOD_START) == Period(PERIOD_START, PERIOD_END)


def test_renew_finalizes_a_draft_still_held(
    fake: FakeStripe, gateway: StripeGateway, sub: Subscription
) -> None:
    sub.held_invoice_id = "in_1"
    fake.on("GET", "/v1/invoices/in_1", invoice("in_1", auto_advance=False))
    fake.on("POST", "/v1/invoices/in_1/finalize", invoice("in_1", status="open"))
    fake.on(
        "GET",
        "/v1/subscriptions/sub_1",
        subscription(period_start=PERIOD_START, period_end=PERIOD_END),
    )
    gateway.renew(sub, PERIOD_START)
    assert fake.calls()[:2] == ["GET /v1/invoices/in_1", "POST /v1/invoices/in_1/finalize"]


def test_renew_before_stripe_moved_on_is_tried_again_later(
    fake: FakeStripe, gateway: StripeGateway, sub: Subscription
) -> None:
    fake.on("GET", "/v1/subscriptions/sub_1", subscription(period_end=PERIOD_START))
    with pytest.raises(GatewayUnavailable, match="has not started the term after"):
        gateway.renew(sub, PERIOD_START)


def test_renew_of_a_subscription_ended_at_stripe_is_refused(
    fake: FakeStripe, gateway: StripeGateway, sub: Subscription
) -> None:
    fake.on("GET", "/v1/subscriptions/sub_1", subscription(status="canceled"))
    with pytest.raises(GatewayRefused, match="sub_1 is canceled"):
        gateway.renew(sub, PERIOD_START)


def test_the_renewal_run_takes_stripes_term(
    fake: FakeStripe,
    settings: Settings,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "DEFAULT_POLICY": "us-ca"}
    terms = make_terms(currency="USD", locale="en")
    with freeze_time(PERIOD_START - dt.timedelta(days=30)):
        started = subscribe(make_user(), terms, make_evidence(terms), time_zone="UTC")
    started.gateway_subscription_id = "sub_1"
    started.next_renewal_at = PERIOD_START
    started.save()
    fake.on(
        "GET",
        "/v1/subscriptions/sub_1",
        subscription(period_start=PERIOD_START, period_end=PERIOD_END),
    )

    with freeze_time(PERIOD_START), django_capture_on_commit_callbacks(execute=True):
        assert run_due_renewals() == RenewalRun(renewed=1)

    started.refresh_from_db()
    assert (started.current_period_start, started.next_renewal_at) == (PERIOD_START, PERIOD_END)
    assert started.status == Status.ACTIVE


# --- Stripe's answers ------------------------------------------------------------------------


def test_server_errors_are_retried_with_the_same_key_then_unavailable(
    fake: FakeStripe, gateway: StripeGateway, sub: Subscription
) -> None:
    fake.on("POST", "/v1/invoices/in_1", error("Try again.", type="api_error"), status=503)
    with pytest.raises(GatewayUnavailable, match="Try again"):
        gateway.hold_invoice("in_1", subscription=sub)
    keys = {r.idempotency_key for r in fake.requests}
    assert len(fake.requests) == 3  # max_network_retries=2
    assert keys == {f"renewals:test:{sub.pk}:hold:in_1"}


def test_a_retry_that_succeeds_is_one_change(
    fake: FakeStripe, gateway: StripeGateway, sub: Subscription
) -> None:
    fake.on(
        "POST",
        "/v1/invoices/in_1",
        Reply(500, error("Oops.", type="api_error")),
        invoice("in_1", auto_advance=False),
    )
    gateway.hold_invoice("in_1", subscription=sub)
    assert len(fake.requests) == 2


def test_rate_limits_are_unavailable(
    fake: FakeStripe, gateway: StripeGateway, sub: Subscription
) -> None:
    fake.on("POST", "/v1/invoices/in_1", error("Too many.", code="rate_limit"), status=429)
    with pytest.raises(GatewayUnavailable, match="Too many"):
        gateway.hold_invoice("in_1", subscription=sub)


def test_connection_errors_are_unavailable(
    fake: FakeStripe, gateway: StripeGateway, sub: Subscription
) -> None:
    # stripe leaves APIConnectionError.__init__ unannotated.
    down = stripe.APIConnectionError("down", should_retry=True)  # type: ignore[no-untyped-call]
    fake.on("POST", "/v1/invoices/in_1", down)
    with pytest.raises(GatewayUnavailable, match="down"):
        gateway.hold_invoice("in_1", subscription=sub)
    assert len(fake.requests) == 3


@pytest.mark.parametrize("status", [400, 402, 404])
def test_client_errors_are_refused_with_stripes_message(
    fake: FakeStripe, gateway: StripeGateway, sub: Subscription, status: int
) -> None:
    fake.on(
        "POST",
        "/v1/invoices/in_1",
        error("No such invoice: 'in_1'", code="resource_missing"),
        status=status,
    )
    with pytest.raises(GatewayRefused, match="No such invoice: 'in_1'") as refused:
        gateway.hold_invoice("in_1", subscription=sub)
    assert refused.value.code == "resource_missing"
    assert len(fake.requests) == 1


def test_retrieve_subscription_is_a_plain_dict(fake: FakeStripe, gateway: StripeGateway) -> None:
    fake.on("GET", "/v1/subscriptions/sub_1", subscription())
    obj = gateway.retrieve_subscription("sub_1")
    assert type(obj) is dict
    assert type(obj["items"]["data"][0]) is dict


# --- reading Stripe's objects ----------------------------------------------------------------


def test_subscription_state_reads_the_period_from_the_items() -> None:
    later = subscription(period_start=PERIOD_START, period_end=PERIOD_END)
    earlier = subscription(period_start=PERIOD_START, period_end=PERIOD_END - dt.timedelta(days=1))
    obj = {**later, "items": listing([*later["items"]["data"], *earlier["items"]["data"]], "")}
    assert "current_period_end" not in obj  # gone from the API version the SDK pins
    state = subscription_state(obj)
    assert state.current_period_start == PERIOD_START
    assert state.current_period_end == PERIOD_END - dt.timedelta(days=1)
    assert (state.status, state.auto_renew) == (Status.ACTIVE, True)
    assert state.price == earlier["items"]["data"][0]["price"]


@pytest.mark.parametrize(
    ("fields", "status", "auto_renew"),
    [
        ({"status": "trialing"}, Status.TRIALING, True),
        ({"status": "past_due"}, Status.PAST_DUE, True),
        ({"status": "unpaid"}, Status.PAST_DUE, True),
        ({"status": "paused"}, Status.ON_HOLD, True),
        ({"status": "incomplete"}, Status.PENDING, False),
        ({"status": "canceled"}, Status.CANCELED, False),
        ({"cancel_at_period_end": True}, Status.ACTIVE, False),
        ({"cancel_at": PERIOD_END}, Status.ACTIVE, False),
    ],
)
def test_subscription_state_maps_status_and_auto_renewal(
    fields: dict[str, Any], status: Status, auto_renew: bool
) -> None:
    state = subscription_state(subscription(**fields))
    assert (state.status, state.auto_renew) == (status, auto_renew)


def test_subscription_state_orders_snapshots_by_term_then_ending() -> None:
    this_term = subscription_state(subscription(period_start=PERIOD_START))
    ended = subscription_state(subscription(period_start=PERIOD_START, status="canceled"))
    next_term = subscription_state(subscription(period_start=PERIOD_END))
    assert this_term.ordering < ended.ordering < next_term.ordering


def test_subscription_state_takes_an_expanded_customer() -> None:
    state = subscription_state(subscription(customer={"id": "cus_9", "object": "customer"}))
    assert state.customer == "cus_9"


@pytest.mark.parametrize(
    ("unit_amount", "currency", "amount"),
    [(2000, "usd", Decimal("20.00")), (1000, "jpy", Decimal(1000)), (5500, "kwd", Decimal("5.5"))],
)
def test_price_terms_in_the_currencys_units(
    unit_amount: int, currency: str, amount: Decimal
) -> None:
    fixed = price_terms(price(unit_amount=unit_amount, currency=currency, interval="year"))
    assert fixed["amount"] == amount
    assert (fixed["currency"], fixed["interval"]) == (currency.upper(), "year")
    assert minor_units(fixed["amount"], fixed["currency"]) == unit_amount


@pytest.mark.parametrize(
    "fields",
    [
        {"recurring": None},
        {"unit_amount": None, "billing_scheme": "tiered"},
        {"billing_scheme": "tiered"},
        {
            "recurring": {
                "interval": "month",
                "interval_count": 1,
                "usage_type": "metered",
                "meter": "mtr_1",
            }
        },
    ],
)
def test_a_price_without_a_fixed_recurring_amount_has_no_terms(fields: dict[str, Any]) -> None:
    with pytest.raises(GatewayRefused, match="not a recurring price"):
        price_terms(price(**fields))


# --- configuration and checks ----------------------------------------------------------------


def test_options_are_validated() -> None:
    with pytest.raises(ImproperlyConfigured, match="max_network_retries"):
        StripeGateway(api_key=API_KEY, max_network_retries=-1)
    with pytest.raises(ImproperlyConfigured, match="webhook_secret"):
        StripeGateway(api_key=API_KEY, webhook_secret=["whsec_1", 2])  # type: ignore[list-item]
    with pytest.raises(ImproperlyConfigured, match="cannot be imported"):
        StripeGateway(api_key=API_KEY, http_client="no.such.Client")
    with pytest.raises(ImproperlyConfigured, match="is not a stripe"):
        StripeGateway(api_key=API_KEY, http_client="collections.OrderedDict")
    for timeout in (0, "10", True):
        with pytest.raises(ImproperlyConfigured, match="timeout"):
            StripeGateway(api_key=API_KEY, timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(ImproperlyConfigured, match="idempotency_prefix"):
        StripeGateway(api_key=API_KEY, idempotency_prefix="")


def test_the_default_http_client_waits_for_stripe_briefly() -> None:
    """The gateway is called under row locks: not the SDK's 80 seconds."""
    default = StripeGateway(api_key=API_KEY).client._requestor._client
    assert isinstance(default, stripe.RequestsClient)
    assert default._timeout == 10
    brief = StripeGateway(api_key=API_KEY, timeout=2.5).client._requestor._client
    assert isinstance(brief, stripe.RequestsClient)
    assert brief._timeout == 2.5


def test_idempotency_keys_name_the_installation(settings: Settings, sub: Subscription) -> None:
    staging, production = (
        StripeGateway(api_key=API_KEY, idempotency_prefix=prefix, http_client=FakeStripe())
        for prefix in ("staging", "production")
    )
    assert staging._key(sub, "hold", "in_1") == f"renewals:staging:{sub.pk}:hold:in_1"
    assert staging._key(sub, "hold", "in_1") != production._key(sub, "hold", "in_1")

    # By default, a hash of SECRET_KEY: installations with other secret keys differ.
    settings.SECRET_KEY = "first-secret-key-" + "x" * 40
    first = StripeGateway(api_key=API_KEY).idempotency_prefix
    assert StripeGateway(api_key=API_KEY).idempotency_prefix == first
    settings.SECRET_KEY = "second-secret-key-" + "x" * 40
    second = StripeGateway(api_key=API_KEY).idempotency_prefix
    assert first != second
    assert len(first) == 12
    assert set(first) <= set("0123456789abcdef")  # a hash, not the key


def test_http_client_by_dotted_path_and_secrets_for_rotation() -> None:
    gateway = StripeGateway(
        api_key=API_KEY,
        webhook_secret=["whsec_new", "whsec_old"],
        http_client="renewals.testing.stripe.FakeStripe",
    )
    assert gateway.webhook_secrets == ("whsec_new", "whsec_old")
    with pytest.raises(AssertionError, match="FakeStripe has no route"):
        gateway.retrieve_subscription("sub_1")


@pytest.mark.parametrize(
    ("options", "debug", "ids"),
    [
        ({"api_key": "sk_live_1", "webhook_secret": "whsec_1"}, False, []),
        ({"api_key": "sk_test_1", "webhook_secret": "whsec_1"}, True, []),
        ({"api_key": "rk_test_1", "webhook_secret": "whsec_1"}, False, ["renewals.W011"]),
        ({"api_key": "", "webhook_secret": "whsec_1"}, False, ["renewals.E014"]),
        ({"api_key": "pk_live_1", "webhook_secret": "whsec_1"}, False, ["renewals.E016"]),
        ({"api_key": "sk_live_1", "webhook_secret": ""}, False, ["renewals.E015"]),
        ({"api_key": "sk_live_1"}, False, ["renewals.E015"]),
    ],
)
def test_system_checks_report_the_keys(
    settings: Settings, options: dict[str, str], debug: bool, ids: list[str]
) -> None:
    settings.DEBUG = debug
    settings.RENEWALS = {
        **settings.RENEWALS,
        "GATEWAY": {"BACKEND": "renewals.gateways.stripe.StripeGateway", "OPTIONS": options},
    }
    assert [message.id for message in check_gateway()] == ids
