"""The Stripe webhook: verified on the raw body with Stripe's signature scheme, stored once,
applied in one transaction (in order, whatever order Stripe delivers in), and the renewal
gate holding a renewal's draft invoice at Stripe."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from io import StringIO
from typing import Any, Protocol

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from freezegun import freeze_time
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from notifications.backends import locmem
from notifications.messages import SMSMessage
from renewals.models import (
    AuditEvent,
    Consent,
    EventOutcome,
    NoticeStatus,
    RenewalNotice,
    Status,
    StripeEvent,
    Subscription,
)
from renewals.services import (
    cancel_auto_renewal,
    record_event,
    resume_auto_renewal,
    run_due_renewals,
    stripe_events,
    subscribe,
)
from renewals.services.cancellation import GATEWAY_CLOCK_SKEW
from renewals.services.stripe_events import receive_event
from renewals.services.sweep import send_due_notices
from renewals.testing.stripe import (
    WEBHOOK_SECRET,
    FakeStripe,
    Reply,
    error,
    event,
    invoice,
    listing,
)
from renewals.testing.stripe import subscription as stripe_subscription
from renewals.types import User
from tests.concurrency import run_concurrently

from ..types import ClientResponse
from .factories import (
    FIRST_RENEWAL,
    PHONE,
    SUBSCRIBED_AT,
    make_evidence,
    make_terms,
    make_user,
    subscribe_with_consent,
)

pytestmark = pytest.mark.django_db

#: Resolved at import, before any test freezes the clock: the URLconf imports the API's
#: pydantic schemas, which must see the real ``datetime``.
URL = reverse("renewals:stripe_webhook")
START = SUBSCRIBED_AT  # 09:00 in Shanghai
RENEWAL = FIRST_RENEWAL  # one month on
NEXT_RENEWAL = dt.datetime(2027, 4, 10, 1, tzinfo=dt.UTC)
MID_TERM = dt.datetime(2027, 2, 20, 4, tzinfo=dt.UTC)
#: cn: a deferred renewal comes the notice's 5 days plus the 24 hours' retry margin later.
DEFERRED = RENEWAL + dt.timedelta(days=6)
LAPSING_PACK = {"cn-lapse": {"extends": "cn", "gate_remedy": "lapse"}}


@pytest.fixture
def fake(settings: Settings, reachable_users: None) -> FakeStripe:
    settings.RENEWALS = {**settings.RENEWALS, "POLICIES": LAPSING_PACK}
    return FakeStripe.install(settings)


def subscriber(policy: str = "cn", stripe_id: str = "sub_1") -> Subscription:
    """A subscription like the shared ``subscription``, under ``policy``, at Stripe as
    ``stripe_id``."""
    return at_stripe(
        subscribe_with_consent(make_user(first_name=PHONE, last_name="zh-hans"), policy=policy),
        stripe_id,
    )


def at_stripe(subscription: Subscription, stripe_id: str = "sub_1") -> Subscription:
    """``subscription``, started under the Stripe gateway, as Stripe's ``stripe_id`` of
    customer ``cus_1``."""
    Subscription.objects.filter(pk=subscription.pk).update(
        gateway_customer_id="cus_1", gateway_subscription_id=stripe_id
    )
    subscription.refresh_from_db()
    assert subscription.gateway == "stripe"
    assert subscription.next_renewal_at == RENEWAL
    return subscription


@pytest.fixture
def subscription(fake: FakeStripe, subscription: Subscription) -> Subscription:
    """The shared ``subscription``, started once the Stripe gateway is installed (``fake``
    comes first), as Stripe's ``sub_1``."""
    return at_stripe(subscription)


def sign(body: str, *, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """A ``Stripe-Signature`` header as Stripe computes it."""
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class Deliver(Protocol):
    def __call__(
        self, payload: dict[str, Any], *, signature: str | None = ..., **sign_options: Any
    ) -> ClientResponse: ...


@pytest.fixture
def deliver(
    client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> Deliver:
    """POST an event signed with the endpoint's secret (or as ``signature`` says), running
    what its transaction does after commit."""

    def post(
        payload: dict[str, Any], *, signature: str | None = "sign", **sign_options: Any
    ) -> ClientResponse:
        body = json.dumps(payload)
        headers: dict[str, Any] = {}
        if signature == "sign":
            headers["HTTP_STRIPE_SIGNATURE"] = sign(body, **sign_options)
        elif signature is not None:
            headers["HTTP_STRIPE_SIGNATURE"] = signature
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(URL, body, content_type="application/json", **headers)

    return post


def updated(
    *,
    id: str = "evt_1",
    created: dt.datetime = MID_TERM,
    type: str = "customer.subscription.updated",
    **fields: Any,
) -> dict[str, Any]:
    """A subscription event about ``sub_1`` in its first term, with ``fields`` changed."""
    fields = {"period_start": START, "period_end": RENEWAL, **fields}
    return event(type, stripe_subscription("sub_1", **fields), id=id, created=created)


def renewal_invoice(**fields: Any) -> dict[str, Any]:
    """The draft invoice Stripe makes for ``sub_1``'s renewal at ``RENEWAL``."""
    fields = {"period_start": START, "period_end": RENEWAL, "created": RENEWAL, **fields}
    return invoice("in_1", subscription="sub_1", amount_due=2500, currency="cny", **fields)


def kinds(subscription: Subscription) -> list[str]:
    events = AuditEvent.objects.filter(subscription=subscription).order_by("sequence")
    return list(events.values_list("kind", flat=True))


def fresh(subscription: Subscription) -> Subscription:
    return Subscription.objects.get(pk=subscription.pk)


# --- verification --------------------------------------------------------------------------


@freeze_time(MID_TERM)
def test_a_signed_event_is_stored_and_applied(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    response = deliver(updated(status="past_due"))

    assert response.status_code == 200
    stored = StripeEvent.objects.get()
    assert (stored.event_id, stored.type, stored.object_id) == (
        "evt_1",
        "customer.subscription.updated",
        "sub_1",
    )
    assert stored.api_version == "2026-10-28.endive"
    assert not stored.livemode
    assert stored.created == MID_TERM
    assert stored.payload["data"]["object"]["status"] == "past_due"
    assert stored.received_at == stored.processed_at == MID_TERM
    assert (stored.outcome, stored.error, stored.attempts) == (EventOutcome.APPLIED, "", 1)
    subscription = fresh(subscription)
    assert subscription.status == Status.PAST_DUE
    assert subscription.gateway_event_created == MID_TERM
    change = AuditEvent.objects.get(kind="gateway_updated")
    assert change.actor == "system"
    assert change.data == {"event": "evt_1", "changes": {"status": ["active", "past_due"]}}
    assert fake.requests == []


@freeze_time(MID_TERM)
def test_any_of_the_configured_secrets_verifies_while_rotating(
    settings: Settings, deliver: Deliver
) -> None:
    fake = FakeStripe.install(settings, webhook_secret=["whsec_new", WEBHOOK_SECRET])
    subscriber()
    assert deliver(updated(id="evt_old"), secret=WEBHOOK_SECRET).status_code == 200
    assert deliver(updated(id="evt_new"), secret="whsec_new").status_code == 200
    assert deliver(updated(id="evt_other"), secret="whsec_other").status_code == 400
    assert set(StripeEvent.objects.values_list("event_id", flat=True)) == {"evt_old", "evt_new"}
    assert fake.requests == []


def _nothing_written(subscription: Subscription) -> None:
    assert not StripeEvent.objects.exists()
    assert fresh(subscription).status == Status.ACTIVE
    assert "gateway_updated" not in kinds(subscription)


@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "No Stripe-Signature header value was provided"),
        ("", "No Stripe-Signature header value was provided"),
        ("t=1,v0=abc", "No signatures found with expected scheme v1"),
        ("garbage", "Unable to extract timestamp and signatures from header"),
        (f"t={int(MID_TERM.timestamp())},v1={'0' * 64}", "No signatures found matching"),
    ],
)
@freeze_time(MID_TERM)
def test_a_missing_or_forged_signature_is_refused_and_nothing_is_written(
    subscription: Subscription,
    deliver: Deliver,
    caplog: pytest.LogCaptureFixture,
    signature: str | None,
    reason: str,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = deliver(updated(status="past_due"), signature=signature)

    assert response.status_code == 400
    _nothing_written(subscription)
    [record] = [r for r in caplog.records if r.name.startswith("renewals")]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("Stripe webhook rejected: ")
    assert reason in record.getMessage()


@freeze_time(MID_TERM)
def test_a_signature_by_another_secret_or_over_another_body_is_refused(
    subscription: Subscription, client: Client
) -> None:
    payload = json.dumps(updated(status="past_due"))
    other = json.dumps(updated(status="canceled"))
    for header in (sign(payload, secret="whsec_attacker"), sign(other)):
        response = client.post(
            URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
        assert response.status_code == 400
    _nothing_written(subscription)


@freeze_time(MID_TERM)
def test_a_signature_older_than_five_minutes_is_a_replay(
    subscription: Subscription, deliver: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(MID_TERM.timestamp())
    with caplog.at_level(logging.WARNING):
        assert deliver(updated(id="evt_stale"), at=now - 301).status_code == 400
    assert "Timestamp outside the tolerance zone" in caplog.text
    _nothing_written(subscription)
    assert deliver(updated(id="evt_in_time"), at=now - 300).status_code == 200


@freeze_time(MID_TERM)
def test_a_signed_body_that_is_not_an_event_is_refused(
    subscription: Subscription, client: Client
) -> None:
    for body in ("[]", "not json", json.dumps({"id": "evt_1", "type": "x", "created": 1})):
        response = client.post(
            URL, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body)
        )
        assert response.status_code == 400
    raw = b"\xff\xfe"
    response = client.post(
        URL, raw, content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=00"
    )
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


@freeze_time(MID_TERM)
def test_without_a_webhook_secret_nothing_verifies(
    settings: Settings, deliver: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    FakeStripe.install(settings, webhook_secret=None)
    with caplog.at_level(logging.WARNING):
        assert deliver(updated()).status_code == 400
    assert "no webhook secret is configured" in caplog.text


def test_a_site_that_bills_through_no_stripe_gateway_has_no_endpoint(client: Client) -> None:
    # tests.settings configure the LocalGateway only.
    body = json.dumps(updated())
    response = client.post(
        URL, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body)
    )
    assert response.status_code == 404
    assert not StripeEvent.objects.exists()


@freeze_time(MID_TERM)
def test_the_endpoint_takes_posts_only_and_needs_no_csrf_token(subscription: Subscription) -> None:
    client = Client(enforce_csrf_checks=True)
    assert URL == "/stripe/webhook/"
    assert client.get(URL).status_code == 405
    body = json.dumps(updated())
    response = client.post(
        URL, body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body)
    )
    assert response.status_code == 200


# --- storing once --------------------------------------------------------------------------


@freeze_time(MID_TERM)
def test_a_replay_is_answered_200_and_has_no_second_effect(
    subscription: Subscription, deliver: Deliver
) -> None:
    payload = event(
        "invoice.payment_failed", renewal_invoice(status="open"), id="evt_1", created=MID_TERM
    )
    assert deliver(payload).status_code == 200
    chain = kinds(subscription)

    assert deliver(payload).status_code == 200

    assert kinds(subscription) == chain
    assert chain.count("invoice_payment_failed") == 1
    stored = StripeEvent.objects.get()
    assert stored.attempts == 1


@pytest.mark.django_db(transaction=True)  # a transaction of its own, as in production
@freeze_time(MID_TERM)
def test_the_steady_state_takes_three_statements(
    subscription: Subscription, deliver: Deliver
) -> None:
    deliver(updated(id="evt_1", created=MID_TERM - dt.timedelta(seconds=1)))
    with CaptureQueriesContext(connection) as queries:
        assert deliver(updated(id="evt_2")).status_code == 200

    statements = [query["sql"].split()[0] for query in queries]
    # Store the event, lock the subscription, note the event's time there.
    assert [s for s in statements if s not in ("BEGIN", "COMMIT")] == [
        "INSERT",
        "SELECT",
        "UPDATE",
    ]
    assert fresh(subscription).gateway_event_created == MID_TERM


@pytest.mark.django_db(transaction=True)
def test_two_deliveries_of_one_event_at_once_apply_it_once(
    subscription: Subscription, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL.")
    slow_record = record_event

    def record_slowly(*args: Any, **kwargs: Any) -> AuditEvent:
        time.sleep(0.2)  # the second delivery's insert waits while the first applies it
        return slow_record(*args, **kwargs)

    monkeypatch.setattr(stripe_events, "record_event", record_slowly)
    payload = event("invoice.payment_failed", renewal_invoice(status="open"), id="evt_twice")

    with freeze_time(MID_TERM):
        stored = run_concurrently(lambda _: receive_event(payload).pk, threads=2)

    assert stored[0] == stored[1] == StripeEvent.objects.get().pk
    assert kinds(subscription).count("invoice_payment_failed") == 1


@freeze_time(MID_TERM)
def test_an_event_of_a_type_nobody_handles_is_stored_and_answered_200(
    subscription: Subscription, deliver: Deliver
) -> None:
    payload = event("customer.created", {"id": "cus_1", "object": "customer"}, id="evt_c")
    assert deliver(payload).status_code == 200
    stored = StripeEvent.objects.get()
    assert (stored.object_id, stored.outcome) == ("cus_1", EventOutcome.IGNORED)
    assert stored.processed_at == MID_TERM


@freeze_time(MID_TERM)
def test_an_upcoming_invoice_which_has_no_id_is_handled(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    upcoming = renewal_invoice()
    del upcoming["id"]
    assert deliver(event("invoice.upcoming", upcoming, id="evt_u")).status_code == 200
    stored = StripeEvent.objects.get()
    assert (stored.object_id, stored.outcome, stored.error) == ("", EventOutcome.IGNORED, "")
    assert fake.requests == []


@freeze_time(MID_TERM)
def test_an_event_about_a_subscription_not_here_is_stored_and_answered_200(
    fake: FakeStripe, deliver: Deliver
) -> None:
    other = event(
        "customer.subscription.updated",
        stripe_subscription("sub_elsewhere", status="past_due"),
        id="evt_x",
    )
    paid = event("invoice.paid", invoice("in_9", subscription="sub_elsewhere"), id="evt_p")
    assert deliver(other).status_code == 200
    assert deliver(paid).status_code == 200
    assert set(StripeEvent.objects.values_list("outcome", flat=True)) == {
        EventOutcome.UNKNOWN_SUBSCRIPTION
    }
    assert not AuditEvent.objects.filter(kind__in=["gateway_updated", "invoice_paid"]).exists()


@freeze_time(MID_TERM)
def test_an_event_about_a_subscription_imported_later_is_applied_by_reprocessing(
    fake: FakeStripe, deliver: Deliver
) -> None:
    deliver(updated(status="past_due"))
    subscription = subscriber()

    call_command("renewals_stripe_reprocess", "evt_1", stdout=(out := StringIO()))

    assert fresh(subscription).status == Status.PAST_DUE
    assert StripeEvent.objects.get().outcome == EventOutcome.APPLIED
    assert "evt_1 (customer.subscription.updated): applied" in out.getvalue()


@freeze_time(RENEWAL)
def test_an_event_that_fails_when_reprocessed_is_kept_failed(
    fake: FakeStripe, deliver: Deliver
) -> None:
    deliver(event("invoice.created", renewal_invoice(), id="evt_inv"))
    assert StripeEvent.objects.get().outcome == EventOutcome.UNKNOWN_SUBSCRIPTION
    subscriber()  # imported since; its notice was never given, so the gate holds the draft
    fake.on("POST", "/v1/invoices/in_1", Reply(503, error("busy", type="api_error")))

    with pytest.raises(CommandError, match="1 of 1 events still fail"):
        call_command("renewals_stripe_reprocess", "evt_inv", stdout=StringIO(), stderr=StringIO())

    stored = StripeEvent.objects.get()
    assert stored.processed_at is None
    assert (stored.outcome, stored.attempts) == ("", 2)
    assert stored.error.startswith("GatewayUnavailable")


# --- failures and re-processing ------------------------------------------------------------


@freeze_time(RENEWAL)
def test_a_failure_answers_500_keeps_the_event_and_reprocessing_applies_it(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    fake.on("POST", "/v1/invoices/in_1", Reply(500, error("Stripe is down", type="api_error")))
    before = kinds(subscription)

    with caplog.at_level(logging.ERROR):
        response = deliver(event("invoice.created", renewal_invoice(), id="evt_inv"))

    assert response.status_code == 500
    stored = StripeEvent.objects.get()
    assert stored.processed_at is None
    assert stored.attempts == 1
    assert stored.error.startswith("GatewayUnavailable: Stripe: ")
    assert "Stripe event evt_inv (invoice.created) failed (attempt 1)" in caplog.text
    # Rolled back as a whole: not held, no gate decision recorded.
    assert kinds(subscription) == before
    assert fresh(subscription).status == Status.ACTIVE
    assert len(fake.requests) == 3  # the SDK tried twice more with the same key
    assert len({request.idempotency_key for request in fake.requests}) == 1

    # Stripe's next try fails too; then Stripe recovers and the command applies it.
    assert deliver(event("invoice.created", renewal_invoice(), id="evt_inv")).status_code == 500
    assert StripeEvent.objects.get().attempts == 2
    fake.on("POST", "/v1/invoices/in_1", renewal_invoice(auto_advance=False))
    out = StringIO()
    call_command("renewals_stripe_reprocess", "--failed", stdout=out)

    stored = StripeEvent.objects.get()
    assert (stored.outcome, stored.error, stored.attempts) == (EventOutcome.APPLIED, "", 3)
    assert stored.processed_at is not None
    assert fresh(subscription).status == Status.ON_HOLD
    assert out.getvalue() == "evt_inv (invoice.created): applied\n1 of 1 failed events applied.\n"
    # Stripe's retry, after it: answered 200, applied once.
    assert deliver(event("invoice.created", renewal_invoice(), id="evt_inv")).status_code == 200
    assert kinds(subscription).count("renewal_held") == 1


@freeze_time(MID_TERM)
def test_reprocess_command_reports_what_it_cannot_do(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    with pytest.raises(CommandError, match="No stored Stripe event evt_missing"):
        call_command("renewals_stripe_reprocess", "evt_missing")
    with pytest.raises(CommandError, match="Name events, or pass --failed"):
        call_command("renewals_stripe_reprocess")
    with pytest.raises(CommandError, match="not both"):
        call_command("renewals_stripe_reprocess", "evt_1", "--failed")
    deliver(updated())
    out = StringIO()
    call_command("renewals_stripe_reprocess", "evt_1", stdout=out)
    assert out.getvalue() == "evt_1 (customer.subscription.updated): processed already (applied)\n"
    out = StringIO()
    call_command("renewals_stripe_reprocess", "--failed", stdout=out)
    assert out.getvalue() == "0 of 0 failed events applied.\n"


@freeze_time(RENEWAL)
def test_reprocess_command_reports_an_event_that_fails_again(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    fake.on("POST", "/v1/invoices/in_1", Reply(400, error("No such invoice: 'in_1'")))
    assert deliver(event("invoice.created", renewal_invoice(), id="evt_inv")).status_code == 500
    err = StringIO()
    with pytest.raises(CommandError, match="1 of 1 failed events still fail"):
        call_command("renewals_stripe_reprocess", "--failed", stdout=StringIO(), stderr=err)
    assert "evt_inv (invoice.created): GatewayRefused: Stripe: No such invoice" in err.getvalue()
    assert StripeEvent.objects.get().attempts == 2


@freeze_time(RENEWAL)
def test_the_admin_lists_events_read_only_and_reprocesses_them(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver, admin_user: User
) -> None:
    fake.on("POST", "/v1/invoices/in_1", Reply(503, error("busy", type="api_error")))
    deliver(event("invoice.created", renewal_invoice(), id="evt_inv"))
    deliver(updated(id="evt_ok", created=RENEWAL - dt.timedelta(minutes=1)))
    client = Client()
    client.force_login(admin_user)
    url = reverse("admin:renewals_stripeevent_changelist")

    page = client.get(url, {"failed": "yes"})
    assert page.status_code == 200
    assert "evt_inv" in page.content.decode()
    assert "evt_ok" not in page.content.decode()
    assert client.get(reverse("admin:renewals_stripeevent_add")).status_code == 403
    model_admin = admin.site._registry[StripeEvent]
    assert not model_admin.has_change_permission(page.wsgi_request)
    assert not model_admin.has_delete_permission(page.wsgi_request)

    selected = StripeEvent.objects.values_list("pk", flat=True)
    response = client.post(url, {"action": "reprocess", "_selected_action": selected}, follow=True)
    assert "1 Stripe event failed again; its error is on the event." in response.content.decode()

    fake.on("POST", "/v1/invoices/in_1", renewal_invoice(auto_advance=False))
    response = client.post(url, {"action": "reprocess", "_selected_action": selected}, follow=True)
    assert "1 Stripe event applied." in response.content.decode()
    assert fresh(subscription).held_invoice_id == "in_1"


def test_reprocessing_needs_the_change_permission(django_user_model: type[User]) -> None:
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_stripeevent"))
    client = Client()
    client.force_login(viewer)
    page = client.get(reverse("admin:renewals_stripeevent_changelist"))
    assert page.status_code == 200
    assert 'value="reprocess"' not in page.content.decode()


# --- out of order --------------------------------------------------------------------------


@freeze_time(MID_TERM)
@pytest.mark.parametrize("order", ["in order", "newest first"])
def test_an_older_event_never_overwrites_newer_state(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver, order: str
) -> None:
    older = updated(id="evt_older", created=MID_TERM - dt.timedelta(minutes=5), status="past_due")
    newer = updated(id="evt_newer", created=MID_TERM, status="active")
    first, second = (older, newer) if order == "in order" else (newer, older)
    deliver(first)
    deliver(second)

    subscription = fresh(subscription)
    assert subscription.status == Status.ACTIVE
    assert subscription.gateway_event_created == MID_TERM
    outcomes = dict(StripeEvent.objects.values_list("event_id", "outcome"))
    expected = EventOutcome.APPLIED if order == "in order" else EventOutcome.STALE
    assert outcomes == {"evt_newer": EventOutcome.APPLIED, "evt_older": expected}
    assert fake.requests == []


@freeze_time(MID_TERM)
def test_in_the_same_second_a_later_term_is_newer_without_asking_stripe(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    moved = MID_TERM.replace(microsecond=0)
    # Stripe's staff reset the billing cycle: the term now starts mid-term...
    deliver(updated(id="evt_reset", period_start=moved, period_end=moved + dt.timedelta(days=30)))
    # ...and the snapshot from before the reset, created in the same second, comes after it.
    deliver(updated(id="evt_before", status="past_due"))

    subscription = fresh(subscription)
    assert subscription.current_period_start == moved
    assert subscription.status == Status.ACTIVE
    assert StripeEvent.objects.get(event_id="evt_before").outcome == EventOutcome.STALE
    assert fake.requests == []


@freeze_time(MID_TERM)
def test_in_the_same_second_an_ambiguous_pair_is_settled_by_stripe(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    fake.on("GET", "/v1/subscriptions/sub_1", updated(status="past_due")["data"]["object"])
    deliver(updated(id="evt_a", status="past_due"))
    deliver(updated(id="evt_b", status="active"))  # which of the two came last?

    assert fresh(subscription).status == Status.PAST_DUE  # what Stripe says now
    assert fake.calls() == ["GET /v1/subscriptions/sub_1"]
    # The same state again in that second needs no question.
    deliver(updated(id="evt_c", status="past_due"))
    assert len(fake.requests) == 1


# --- subscription sync ---------------------------------------------------------------------


@freeze_time(MID_TERM)
def test_a_term_changed_at_stripe_moves_the_renewal_and_replans_its_notices(
    subscription: Subscription, deliver: Deliver
) -> None:
    longer = RENEWAL + dt.timedelta(days=7)
    deliver(updated(period_end=longer))

    subscription = fresh(subscription)
    assert subscription.next_renewal_at == longer
    notices = RenewalNotice.objects.filter(subscription=subscription)
    assert set(
        notices.filter(status=NoticeStatus.PLANNED).values_list("renewal_at", flat=True)
    ) == {longer}
    assert notices.get(renewal_at=RENEWAL).status == NoticeStatus.WITHDRAWN
    assert kinds(subscription)[-2:] == ["gateway_updated", "notices_planned"]


@freeze_time(MID_TERM)
def test_a_trial_extended_at_stripe_moves_the_trial_end(fake: FakeStripe, deliver: Deliver) -> None:
    terms = make_terms(trial_days=14)
    with freeze_time(START):
        subscription = subscribe(make_user(), terms, make_evidence(terms), policy="cn")
    Subscription.objects.filter(pk=subscription.pk).update(gateway_subscription_id="sub_1")
    trial_end = START + dt.timedelta(days=21)
    deliver(updated(status="trialing", period_end=trial_end, trial_end=trial_end))

    subscription = fresh(subscription)
    assert subscription.status == Status.TRIALING
    assert subscription.trial_ends_at == subscription.next_renewal_at == trial_end


@freeze_time(MID_TERM)
def test_a_cancellation_in_the_customer_portal_switches_auto_renewal_off(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    locmem.outbox.clear()
    response = deliver(updated(id="evt_portal", cancel_at_period_end=True))

    assert response.status_code == 200
    subscription = fresh(subscription)
    assert not subscription.auto_renew
    assert subscription.status == Status.ACTIVE  # the paid term runs out
    assert not subscription.gateway_sync_pending
    cancelled = AuditEvent.objects.get(kind="auto_renewal_cancelled")
    assert cancelled.actor == "stripe:evt_portal"
    assert cancelled.data["via"] == "gateway"
    assert cancelled.data["service_ends_at"] == RENEWAL.isoformat()
    consent = Consent.objects.get(subscription=subscription)
    assert (consent.revoked_via, consent.revoke_reason) == ("gateway", "switched off at Stripe")
    assert not subscription.notices.filter(status=NoticeStatus.PLANNED).exists()
    [confirmation] = [m for m in locmem.outbox if isinstance(m, SMSMessage)]
    assert confirmation.to == PHONE
    # Stripe has it already: nothing is sent back (no echo).
    assert fake.requests == []

    # Stripe's later events agree and change nothing more.
    deliver(
        updated(
            id="evt_again", created=MID_TERM + dt.timedelta(minutes=1), cancel_at_period_end=True
        )
    )
    assert kinds(subscription).count("auto_renewal_cancelled") == 1
    assert fake.requests == []


@freeze_time(MID_TERM)
def test_a_cancellation_at_a_set_time_switches_auto_renewal_off_too(
    subscription: Subscription, deliver: Deliver
) -> None:
    deliver(updated(cancel_at=RENEWAL - dt.timedelta(days=3)))
    assert not fresh(subscription).auto_renew


@freeze_time(MID_TERM)
def stripe_state(fake: FakeStripe) -> dict[str, bool]:
    """``sub_1`` as Stripe keeps it: each update Stripe carries out (not one it replays for a
    key used before) sets ``cancel_at_period_end``."""
    state = {"cancel_at_period_end": False}

    def update(request: Any) -> dict[str, Any]:
        state["cancel_at_period_end"] = request.form["cancel_at_period_end"] == "true"
        changed = updated(cancel_at_period_end=state["cancel_at_period_end"])
        obj: dict[str, Any] = changed["data"]["object"]
        return obj

    fake.on("POST", "/v1/subscriptions/sub_1", update)
    return state


def test_auto_renewal_switched_on_at_stripe_is_switched_off_again(
    subscription: Subscription,
    fake: FakeStripe,
    deliver: Deliver,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    at_stripe = stripe_state(fake)
    fake.on("GET", "/v1/invoices", listing([], "/v1/invoices"))
    with freeze_time(MID_TERM), django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(subscription, actor=subscription.user, via="manage_page")
    assert at_stripe["cancel_at_period_end"]

    at_stripe["cancel_at_period_end"] = False  # switched on again in the customer portal
    clicked = MID_TERM + dt.timedelta(minutes=10)
    with freeze_time(clicked):
        deliver(updated(id="evt_renew_clicked", created=clicked))

    subscription = fresh(subscription)
    assert not subscription.auto_renew
    assert not subscription.gateway_sync_pending
    refused = AuditEvent.objects.get(kind="gateway_auto_renew_refused")
    assert refused.data == {"event": "evt_renew_clicked", "reason": "auto-renewal is off here"}
    assert fake.calls() == ["POST /v1/subscriptions/sub_1", "GET /v1/invoices"] * 2
    first_off, off_again = fake.requests[0], fake.requests[2]
    assert off_again.form == first_off.form
    # A key of its own: Stripe would replay the first switch-off's answer for the old one.
    assert off_again.idempotency_key != first_off.idempotency_key
    assert at_stripe["cancel_at_period_end"]


@freeze_time(MID_TERM)
def test_a_late_event_from_before_our_own_sync_does_not_switch_auto_renewal_back(
    subscription: Subscription,
    fake: FakeStripe,
    deliver: Deliver,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    switched_off = updated(cancel_at_period_end=True)["data"]["object"]
    fake.on("POST", "/v1/subscriptions/sub_1", switched_off)
    fake.on("GET", "/v1/invoices", listing([], "/v1/invoices"))
    with django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(subscription, actor=subscription.user, via="manage_page")
    assert len(fake.requests) == 2
    # Whole seconds, a clock skew earlier: Stripe's clock may be behind ours.
    assert fresh(subscription).gateway_event_created == MID_TERM - GATEWAY_CLOCK_SKEW

    late = updated(id="evt_late", created=MID_TERM - GATEWAY_CLOCK_SKEW - dt.timedelta(seconds=1))
    deliver(late)

    assert StripeEvent.objects.get().outcome == EventOutcome.STALE
    assert not fresh(subscription).auto_renew
    assert len(fake.requests) == 2

    # Within the skew of our change: no telling by the clocks, so Stripe is asked.
    fake.on("GET", "/v1/subscriptions/sub_1", switched_off)
    deliver(updated(id="evt_close", created=MID_TERM - dt.timedelta(seconds=1)))

    assert not fresh(subscription).auto_renew
    assert fake.calls()[2:] == ["GET /v1/subscriptions/sub_1"]


@pytest.mark.parametrize("stripe_clock", [dt.timedelta(0), dt.timedelta(seconds=-45)])
def test_a_portal_cancellation_just_after_our_own_sync_is_not_taken_for_an_old_event(
    subscription: Subscription,
    fake: FakeStripe,
    deliver: Deliver,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    stripe_clock: dt.timedelta,
) -> None:
    """Stripe dates events in whole seconds by its own clock: an event it created just after
    our change may read as before it."""
    Subscription.objects.filter(pk=subscription.pk).update(auto_renew=False)
    fake.on("POST", "/v1/subscriptions/sub_1", updated()["data"]["object"])
    resumed = MID_TERM + dt.timedelta(milliseconds=400)
    with freeze_time(resumed), django_capture_on_commit_callbacks(execute=True):
        resume_auto_renewal(
            subscription, evidence=make_evidence(subscription.terms), actor=subscription.user
        )
    assert fake.calls() == ["POST /v1/subscriptions/sub_1"]

    cancelled = updated(cancel_at_period_end=True)
    fake.on("GET", "/v1/subscriptions/sub_1", cancelled["data"]["object"])
    with freeze_time(resumed + dt.timedelta(seconds=1)):
        deliver(
            {**cancelled, "id": "evt_portal", "created": int((MID_TERM + stripe_clock).timestamp())}
        )

    subscription = fresh(subscription)
    assert not subscription.auto_renew
    assert AuditEvent.objects.filter(kind="auto_renewal_cancelled").get().data["via"] == "gateway"
    assert fake.calls()[1:] == ["GET /v1/subscriptions/sub_1"]


@freeze_time(MID_TERM)
def test_while_a_change_here_is_on_its_way_stripe_does_not_undo_it(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    cancel_auto_renewal(subscription, actor=subscription.user, via="manage_page")
    assert fresh(subscription).gateway_sync_pending  # not told yet (no commit in this test)

    deliver(updated(id="evt_before_sync"))

    assert not fresh(subscription).auto_renew
    assert "gateway_auto_renew_refused" not in kinds(subscription)


@freeze_time(RENEWAL)
@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"cancel_at_period_end": True}, Status.EXPIRED),
        ({"cancel_at": RENEWAL}, Status.EXPIRED),
        ({}, Status.CANCELED),
    ],
)
def test_a_deleted_subscription_ends_here(
    subscription: Subscription,
    fake: FakeStripe,
    deliver: Deliver,
    fields: dict[str, Any],
    status: Status,
) -> None:
    payload = updated(type="customer.subscription.deleted", status="canceled", **fields)
    deliver(payload)

    subscription = fresh(subscription)
    assert subscription.status == status
    assert not subscription.auto_renew
    assert not subscription.notices.filter(status=NoticeStatus.PLANNED).exists()
    assert fake.requests == []


@freeze_time(RENEWAL + dt.timedelta(minutes=1))
def test_the_term_stripe_starts_at_the_renewal_waits_for_the_renewal_run(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    """Stripe moves the term on at the renewal; the gate must decide on that renewal."""
    deliver(updated(period_start=RENEWAL, period_end=NEXT_RENEWAL))

    subscription = fresh(subscription)
    assert subscription.next_renewal_at == RENEWAL
    assert "gateway_updated" not in kinds(subscription)
    fake.on("GET", "/v1/invoices", listing([], "/v1/invoices"))
    assert run_due_renewals().deferred == 1  # the notice was never given: held at Stripe
    assert fake.calls() == ["GET /v1/invoices"]  # no draft yet: the gate holds it when it comes


# --- the gate on Stripe's renewal invoices ------------------------------------------------


def _give_notice(subscription: Subscription) -> None:
    assert subscription.next_renewal_at is not None
    notice = subscription.notices.get(renewal_at=subscription.next_renewal_at)
    with freeze_time(notice.send_at):
        send_due_notices()
    assert RenewalNotice.objects.get(pk=notice.pk).status == NoticeStatus.SENT


@freeze_time(RENEWAL)
def test_an_allowed_renewal_invoice_is_left_to_stripe(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    _give_notice(subscription)
    assert deliver(event("invoice.created", renewal_invoice(), id="evt_inv")).status_code == 200

    assert fake.requests == []
    subscription = fresh(subscription)
    assert subscription.status == Status.ACTIVE
    assert subscription.held_invoice_id is None
    gate = AuditEvent.objects.get(kind="renewal_gate")
    assert gate.data["allowed"]
    assert gate.data["renewal_at"] == RENEWAL.isoformat()


@freeze_time(RENEWAL)
@pytest.mark.parametrize(
    "payload",
    [
        renewal_invoice(billing_reason="subscription_update"),
        renewal_invoice(status="open"),
        renewal_invoice(parent=None),
    ],
)
def test_other_invoices_are_not_gated(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver, payload: dict[str, Any]
) -> None:
    deliver(event("invoice.created", payload, id="evt_inv"))
    assert StripeEvent.objects.get().outcome == EventOutcome.IGNORED
    assert "renewal_gate" not in kinds(subscription)
    assert fake.requests == []


def _held(subscription: Subscription, fake: FakeStripe, deliver: Any) -> Subscription:
    """Stripe drafts the renewal invoice at ``RENEWAL``; the notice was never given."""
    fake.on("POST", "/v1/invoices/in_1", renewal_invoice(auto_advance=False))
    with freeze_time(RENEWAL):
        assert deliver(event("invoice.created", renewal_invoice(), id="evt_inv")).status_code == 200
        # Stripe moves the term on at once; here the renewal stays held.
        deliver(
            updated(
                id="evt_term",
                created=RENEWAL,
                period_start=RENEWAL,
                period_end=NEXT_RENEWAL,
            )
        )
    [hold] = fake.requests
    assert (hold.method, hold.path, hold.form) == (
        "POST",
        "/v1/invoices/in_1",
        {"auto_advance": "false"},
    )
    assert hold.idempotency_key == f"renewals:test:{subscription.pk}:hold:in_1"
    subscription = fresh(subscription)
    assert subscription.status == Status.ON_HOLD
    assert subscription.held_renewal_at == subscription.next_renewal_at == RENEWAL
    assert subscription.held_invoice_id == "in_1"
    return subscription


def test_a_refused_renewal_holds_the_draft_then_voids_it_when_the_renewal_lapses(
    fake: FakeStripe,
    deliver: Deliver,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    subscription = _held(subscriber(policy="cn-lapse"), fake, deliver)
    assert AuditEvent.objects.get(kind="renewal_held").data["remedy"] == "lapse"
    fake.requests.clear()
    fake.on("POST", "/v1/subscriptions/sub_1", updated(cancel_at_period_end=True)["data"]["object"])
    fake.on("GET", "/v1/invoices/in_1", renewal_invoice(auto_advance=False))
    fake.on("POST", "/v1/invoices/in_1/finalize", renewal_invoice(status="open"))
    fake.on("POST", "/v1/invoices/in_1/void", renewal_invoice(status="void"))
    fake.on("DELETE", "/v1/subscriptions/sub_1", updated(status="canceled")["data"]["object"])

    with (
        freeze_time(RENEWAL + dt.timedelta(minutes=5)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert run_due_renewals().lapsed == 1

    assert fake.calls() == [
        "POST /v1/subscriptions/sub_1",
        "GET /v1/invoices/in_1",
        "POST /v1/invoices/in_1/finalize",
        "POST /v1/invoices/in_1/void",
        "DELETE /v1/subscriptions/sub_1",
    ]
    assert fake.requests[2].form == {"auto_advance": "false"}  # finalized without charging
    # Stripe had started the next term (its draft): ended now, not at that term's end.
    assert fake.requests[4].query == {"prorate": "false", "invoice_now": "false"}
    subscription = fresh(subscription)
    assert subscription.status == Status.EXPIRED
    assert subscription.held_invoice_id is None


def test_a_refused_renewal_holds_the_draft_then_finalizes_it_when_the_notice_is_given(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    subscription = _held(subscription, fake, deliver)
    fake.requests.clear()
    with freeze_time(RENEWAL + dt.timedelta(minutes=5)):
        assert run_due_renewals().deferred == 1
    assert fake.requests == []  # held once, at Stripe already
    _give_notice(fresh(subscription))
    fake.on("GET", "/v1/invoices/in_1", renewal_invoice(auto_advance=False))
    fake.on("POST", "/v1/invoices/in_1/finalize", renewal_invoice(status="open"))
    fake.on(
        "GET",
        "/v1/subscriptions/sub_1",
        updated(period_start=RENEWAL, period_end=NEXT_RENEWAL)["data"]["object"],
    )

    deferred_to = fresh(subscription).next_renewal_at
    assert deferred_to == DEFERRED + dt.timedelta(minutes=5)
    with freeze_time(deferred_to):
        assert run_due_renewals().renewed == 1

    assert fake.calls() == [
        "GET /v1/invoices/in_1",
        "POST /v1/invoices/in_1/finalize",
        "GET /v1/subscriptions/sub_1",
    ]
    assert fake.requests[1].form == {"auto_advance": "true"}
    subscription = fresh(subscription)
    assert subscription.status == Status.ACTIVE
    assert (subscription.current_period_start, subscription.next_renewal_at) == (
        RENEWAL,
        NEXT_RENEWAL,
    )
    assert subscription.held_invoice_id is None


def test_a_renewal_held_before_stripe_drafted_its_invoice_holds_the_draft_when_it_comes(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    fake.on("GET", "/v1/invoices", listing([], "/v1/invoices"))
    with freeze_time(RENEWAL):
        assert run_due_renewals().deferred == 1
    fake.requests.clear()
    fake.on("POST", "/v1/invoices/in_1", renewal_invoice(auto_advance=False))

    with freeze_time(RENEWAL + dt.timedelta(minutes=2)):
        deliver(event("invoice.created", renewal_invoice(), id="evt_inv"))

    assert fake.calls() == ["POST /v1/invoices/in_1"]
    assert fresh(subscription).held_invoice_id == "in_1"
    assert kinds(subscription).count("renewal_held") == 1


@freeze_time(RENEWAL)
def test_a_renewal_draft_of_a_subscription_ended_here_is_held(
    subscription: Subscription, fake: FakeStripe, deliver: Deliver
) -> None:
    Subscription.objects.filter(pk=subscription.pk).update(status=Status.EXPIRED)
    fake.on("POST", "/v1/invoices/in_1", renewal_invoice(auto_advance=False))

    assert deliver(event("invoice.created", renewal_invoice(), id="evt_inv")).status_code == 200

    assert fake.calls() == ["POST /v1/invoices/in_1"]
    subscription = fresh(subscription)
    assert (subscription.status, subscription.held_invoice_id) == (Status.EXPIRED, "in_1")
    gate = AuditEvent.objects.get(kind="renewal_gate")
    assert gate.data["reasons"] == ["the subscription is expired"]


# --- payments ------------------------------------------------------------------------------


@freeze_time(RENEWAL)
def test_a_paid_invoice_is_recorded(subscription: Subscription, deliver: Deliver) -> None:
    paid = renewal_invoice(status="paid", amount_paid=2500)
    deliver(event("invoice.paid", paid, id="evt_paid"))

    recorded = AuditEvent.objects.get(kind="invoice_paid")
    assert recorded.data == {
        "event": "evt_paid",
        "invoice": "in_1",
        "billing_reason": "subscription_cycle",
        "amount": 2500,
        "currency": "CNY",
        "attempt_count": 0,
    }
    assert fresh(subscription).status == Status.ACTIVE


@freeze_time(RENEWAL)
def test_a_failed_payment_is_recorded_and_makes_the_subscription_past_due(
    subscription: Subscription, deliver: Deliver
) -> None:
    failed = renewal_invoice(status="open", attempt_count=1)
    deliver(event("invoice.payment_failed", failed, id="evt_failed", created=RENEWAL))

    assert AuditEvent.objects.get(kind="invoice_payment_failed").data["attempt_count"] == 1
    assert fresh(subscription).status == Status.PAST_DUE


@freeze_time(RENEWAL)
def test_a_late_payment_failure_is_recorded_but_does_not_undo_a_newer_state(
    subscription: Subscription, deliver: Deliver
) -> None:
    deliver(updated(id="evt_now", created=RENEWAL))
    late = event(
        "invoice.payment_failed",
        renewal_invoice(status="open"),
        id="evt_late",
        created=RENEWAL - dt.timedelta(hours=1),
    )
    deliver(late)

    assert AuditEvent.objects.filter(kind="invoice_payment_failed").count() == 1
    assert fresh(subscription).status == Status.ACTIVE


@freeze_time(MID_TERM)
def test_a_failed_payment_leaves_a_held_renewal_on_hold(
    subscription: Subscription, deliver: Deliver
) -> None:
    Subscription.objects.filter(pk=subscription.pk).update(status=Status.ON_HOLD)
    deliver(event("invoice.payment_failed", renewal_invoice(status="open"), id="evt_f"))
    assert fresh(subscription).status == Status.ON_HOLD


def test_receive_event_takes_a_payload_directly(
    subscription: Subscription, fake: FakeStripe
) -> None:
    with freeze_time(MID_TERM):
        stored = receive_event(updated(status="past_due"))
    assert stored.outcome == EventOutcome.APPLIED
    assert fresh(subscription).status == Status.PAST_DUE
