"""Consent is refused unless it is affirmative, unticked at first, separate and current."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from freezegun import freeze_time
from pytest_django import Settings

from notifications.backends import locmem
from notifications.messages import PushMessage, SMSMessage
from notifications.models import Device
from renewals.exceptions import (
    AlreadySubscribed,
    CheckoutKeyReused,
    ConsentBundled,
    ConsentMissing,
    ConsentNotAffirmative,
    ConsentPreTicked,
    FirstRenewalTooSoon,
    IllegalTransition,
    NotAllowed,
    StaleTermsHash,
    TrialAlreadyUsed,
)
from renewals.models import AuditEvent, Consent, RenewalNotice, Status, Subscription
from renewals.services import (
    record_consent,
    run_due_renewals,
    schedule_new_terms,
    subscribe,
    trial_available,
)
from renewals.services.sweep import send_due_notices
from renewals.types import Actor, User

from ..concurrency import run_concurrently
from .factories import (
    make_evidence,
    make_subscription,
    make_terms,
    make_user,
    subscribe_with_consent,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"control_initially_unticked": False}, ConsentPreTicked),
        ({"bundled_with": ("privacy policy",)}, ConsentBundled),
        ({"terms_hash": "0" * 64}, StaleTermsHash),
        ({"affirmative": False}, ConsentNotAffirmative),
    ],
)
def test_subscribe_refuses_invalid_consent_and_writes_nothing(
    overrides: dict[str, Any], error: type[Exception]
) -> None:
    user, terms = make_user(), make_terms()
    with pytest.raises(error):
        subscribe(user, terms, make_evidence(terms, **overrides), time_zone="Asia/Shanghai")
    assert not Subscription.objects.exists()
    assert not Consent.objects.exists()
    assert not AuditEvent.objects.exists()


def test_subscribe_without_consent_is_refused() -> None:
    with pytest.raises(ConsentMissing, match="No valid consent"):
        subscribe(make_user(), make_terms(), None)
    assert not Subscription.objects.exists()


def test_stale_hash_names_both_hashes() -> None:
    terms = make_terms()
    with pytest.raises(StaleTermsHash) as info:
        subscribe(make_user(), terms, make_evidence(terms, terms_hash="ab" * 32))
    assert info.value.current == terms.content_hash
    assert "abababababab" in str(info.value)


def test_bundled_names_the_other_agreement() -> None:
    terms = make_terms()
    with pytest.raises(ConsentBundled, match="terms of service"):
        subscribe(make_user(), terms, make_evidence(terms, bundled_with=("terms of service",)))


def test_subscribe_stores_evidence_and_plans_notices() -> None:
    user, terms = make_user(), make_terms()
    subscription = subscribe(user, terms, make_evidence(terms), time_zone="Asia/Shanghai")
    assert subscription.status == Status.ACTIVE
    assert subscription.auto_renew
    consent = subscription.consents.get()
    assert consent.terms_hash == terms.content_hash
    assert consent.control_initially_unticked
    assert consent.ip_address == "203.0.113.7"
    assert consent.policy == "cn"
    notice = RenewalNotice.objects.get(subscription=subscription)
    assert notice.renewal_at == subscription.next_renewal_at
    kinds = list(subscription.audit_events.values_list("kind", flat=True))
    assert kinds == ["subscribed", "consent_granted", "notices_planned"]


def test_trial_subscription_renews_when_the_trial_ends() -> None:
    terms = make_terms(trial_days=7)
    subscription = subscribe(make_user(), terms, make_evidence(terms), time_zone="UTC")
    assert subscription.status == Status.TRIALING
    assert subscription.next_renewal_at == subscription.trial_ends_at
    assert subscription.trial_ends_at is not None
    assert subscription.current_period_start is not None
    assert (subscription.trial_ends_at - subscription.current_period_start).days == 7


def test_record_consent_binds_to_the_subscriptions_current_terms() -> None:
    subscription = make_subscription()
    other = make_terms(amount="30.00")
    with pytest.raises(StaleTermsHash):
        record_consent(subscription, make_evidence(other))
    assert not subscription.consents.exists()


def test_consent_rows_are_insert_only() -> None:
    terms = make_terms()
    subscription = subscribe(make_user(), terms, make_evidence(terms))
    consent = subscription.consents.get()
    consent.user_agent = "edited"
    with pytest.raises(Exception, match="insert-only"):
        consent.save()


def test_an_unknown_time_zone_is_refused_before_anything_is_written() -> None:
    terms = make_terms()
    with pytest.raises(ValidationError, match="Mars/Olympus"):
        subscribe(make_user(), terms, make_evidence(terms), time_zone="Mars/Olympus")
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "error", "fragment"),
    [
        ({"affirmative": "false"}, TypeError, "affirmative must be a bool"),
        ({"control_initially_unticked": 1}, TypeError, "control_initially_unticked"),
        ({"channel": "carrier-pigeon"}, ValueError, "channel must be one of"),
        ({"form_id": ""}, ValueError, "form_id"),
    ],
)
def test_malformed_evidence_is_refused_when_built(
    overrides: dict[str, Any], error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error, match=fragment):
        make_evidence(make_terms(), **overrides)


def test_consent_to_an_ended_subscription_is_refused() -> None:
    subscription = make_subscription(status=Status.CANCELED, auto_renew=False)
    with pytest.raises(IllegalTransition):
        record_consent(subscription, make_evidence(subscription.terms))
    assert not subscription.consents.exists()


def test_the_audit_chain_holds_a_hash_of_the_evidence_not_the_personal_data() -> None:
    terms = make_terms()
    subscription = subscribe(make_user(), terms, make_evidence(terms))
    consent = subscription.consents.get()
    event = subscription.audit_events.get(kind="consent_granted")
    assert event.data["evidence_sha256"] == consent.evidence_hash()
    assert "203.0.113.7" not in str(event.data)
    assert "pytest" not in str(event.data)


def test_a_naive_start_is_refused() -> None:
    terms = make_terms()
    with pytest.raises(ValueError, match="aware"):
        subscribe(make_user(), terms, make_evidence(terms), start=dt.datetime(2027, 1, 1))


def test_renewal_times_are_whole_seconds() -> None:
    terms = make_terms()
    start = dt.datetime(2027, 1, 31, 9, 30, 15, 987654, tzinfo=dt.UTC)
    subscription = subscribe(make_user(), terms, make_evidence(terms), start=start, time_zone="UTC")
    assert subscription.next_renewal_at == dt.datetime(2027, 2, 28, 9, 30, 15, tzinfo=dt.UTC)


def test_the_same_checkout_submitted_twice_starts_one_subscription() -> None:
    user, terms = make_user(), make_terms()
    first = subscribe(user, terms, make_evidence(terms), request_key="a" * 32)
    again = subscribe(user, terms, make_evidence(terms), request_key="a" * 32)
    assert again.pk == first.pk
    assert Subscription.objects.count() == 1
    assert Consent.objects.count() == 1


def test_a_checkout_key_of_another_user_is_refused() -> None:
    terms = make_terms()
    subscribe(make_user(), terms, make_evidence(terms), request_key="a" * 32)
    with pytest.raises(CheckoutKeyReused, match="another user"):
        subscribe(make_user(), terms, make_evidence(terms), request_key="a" * 32)
    assert Subscription.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submissions_of_one_checkout_start_one_subscription() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL.")
    user, terms = make_user(), make_terms()

    def submit(index: int) -> Subscription:
        return subscribe(user, terms, make_evidence(terms), request_key="c" * 32)

    results = run_concurrently(submit)
    assert {s.pk for s in results} == {Subscription.objects.get().pk}
    assert Consent.objects.count() == 1


@pytest.mark.parametrize(
    ("given", "stored"),
    [("2001:DB8::1", "2001:db8::1"), ("::ffff:1.2.3.4", "::ffff:1.2.3.4"), ("203.0.113.7", None)],
)
def test_the_evidence_hash_matches_the_stored_row(given: str, stored: str | None) -> None:
    terms = make_terms()
    subscription = subscribe(make_user(), terms, make_evidence(terms, ip_address=given))
    consent = Consent.objects.get(subscription=subscription)  # as read back from the database
    assert consent.ip_address == (stored or given)
    event = subscription.audit_events.get(kind="consent_granted")
    assert event.data["evidence_sha256"] == consent.evidence_hash()


def test_an_invalid_ip_address_is_refused_when_built() -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        make_evidence(make_terms(), ip_address="localhost")


def test_a_checkout_key_replayed_with_other_terms_is_refused() -> None:
    user = make_user()
    first, second = make_terms(), make_terms(amount="99.00")
    subscribe(user, first, make_evidence(first), request_key="d" * 32)
    with pytest.raises(CheckoutKeyReused, match="other terms"):
        subscribe(user, second, make_evidence(second), request_key="d" * 32)


def test_the_checkout_key_is_checked_again_under_the_lock() -> None:
    """A submission that passed the first look-up before the first one committed returns it."""
    user, terms = make_user(), make_terms()
    first = subscribe(user, terms, make_evidence(terms), request_key="e" * 32)
    with mock.patch("renewals.services.consent._started_by", side_effect=[None, first]):
        again = subscribe(user, terms, make_evidence(terms), request_key="e" * 32)
    assert again.pk == first.pk
    assert Subscription.objects.count() == 1


# --- one live subscription per service ---------------------------------------------------


def test_a_second_live_subscription_to_the_same_service_is_refused() -> None:
    user, terms = make_user(), make_terms()
    first = subscribe(user, terms, make_evidence(terms), request_key="a" * 32)
    repriced = make_terms(amount="30.00")  # new terms, the same service
    for offered in (terms, repriced):
        with pytest.raises(AlreadySubscribed) as info:
            subscribe(user, offered, make_evidence(offered), request_key="b" * 32)
        assert info.value.existing == first
    assert Subscription.objects.get() == first
    assert Consent.objects.count() == 1
    assert list(AuditEvent.objects.values_list("kind", flat=True)).count("subscribed") == 1


@pytest.mark.parametrize(
    "status", [Status.TRIALING, Status.ACTIVE, Status.PAST_DUE, Status.ON_HOLD]
)
def test_every_live_status_blocks_a_second_subscription(status: Status) -> None:
    existing = make_subscription(status=status, auto_renew=False)
    with pytest.raises(AlreadySubscribed):
        subscribe(existing.user, existing.terms, make_evidence(existing.terms))


@pytest.mark.parametrize("status", [Status.EXPIRED, Status.CANCELED, Status.PENDING])
def test_an_ended_subscription_does_not_block_a_new_one(status: Status) -> None:
    ended = make_subscription(status=status, auto_renew=False)
    again = subscribe(ended.user, ended.terms, make_evidence(ended.terms))
    assert again.pk != ended.pk
    assert again.is_live


def test_other_services_and_other_users_are_not_blocked() -> None:
    user, terms = make_user(), make_terms()
    subscribe(user, terms, make_evidence(terms))
    other_service = make_terms(service_name="Example Max")
    assert subscribe(user, other_service, make_evidence(other_service)).is_live
    assert subscribe(make_user(), terms, make_evidence(terms)).is_live


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_checkouts_to_one_service_start_one_subscription() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL.")
    user, terms = make_user(), make_terms()

    def submit(index: int) -> Subscription | AlreadySubscribed:
        try:
            return subscribe(user, terms, make_evidence(terms), request_key=f"{index:032x}")
        except AlreadySubscribed as refused:
            return refused

    results = run_concurrently(submit)
    started = Subscription.objects.get()
    assert sorted(type(result).__name__ for result in results) == [
        "AlreadySubscribed",
        "Subscription",
    ]
    assert {r.existing.pk if isinstance(r, AlreadySubscribed) else r.pk for r in results} == {
        started.pk
    }
    assert Consent.objects.count() == 1


# --- the free trial, once per user and service --------------------------------------------


def test_the_free_trial_is_given_once_per_user_and_service() -> None:
    user, terms = make_user(), make_terms(trial_days=7)
    assert trial_available(user, terms)
    first = subscribe(user, terms, make_evidence(terms))
    assert first.status == Status.TRIALING
    first.transition_to(Status.CANCELED, auto_renew=False)

    assert not trial_available(user, terms)
    with pytest.raises(TrialAlreadyUsed, match="trial=False"):
        subscribe(user, terms, make_evidence(terms))
    assert Subscription.objects.count() == 1

    again = subscribe(user, terms, make_evidence(terms), trial=False)
    assert again.status == Status.ACTIVE
    assert again.trial_ends_at is None
    assert again.next_renewal_at is not None
    assert again.current_period_start is not None
    assert (again.next_renewal_at - again.current_period_start).days in (28, 29, 30, 31)
    assert trial_available(make_user(), terms)  # another user still gets it


def test_the_trial_counts_per_service_not_per_terms() -> None:
    user, terms = make_user(), make_terms(trial_days=7)
    subscribe(user, terms, make_evidence(terms)).transition_to(Status.CANCELED)
    assert not trial_available(user, make_terms(trial_days=14))
    assert trial_available(user, make_terms(trial_days=7, service_name="Example Max"))


def test_terms_may_give_the_trial_every_time() -> None:
    user = make_user()
    terms = make_terms(trial_days=7, trial_once_per_user=False)
    subscribe(user, terms, make_evidence(terms)).transition_to(Status.CANCELED)
    assert trial_available(user, terms)
    assert subscribe(user, terms, make_evidence(terms)).status == Status.TRIALING


def test_terms_without_a_trial_never_offer_one() -> None:
    user, terms = make_user(), make_terms()
    assert not trial_available(user, terms)
    assert subscribe(user, terms, make_evidence(terms), trial=True).trial_ends_at is None


def test_a_subscription_without_its_trial_did_not_use_it() -> None:
    user, terms = make_user(), make_terms(trial_days=7)
    subscribe(user, terms, make_evidence(terms), trial=False).transition_to(Status.CANCELED)
    assert trial_available(user, terms)


# --- who may consent -----------------------------------------------------------------------


def test_another_user_cannot_consent_for_a_subscription() -> None:
    subscription = make_subscription(auto_renew=False)
    with pytest.raises(NotAllowed, match="belongs to another user"):
        record_consent(subscription, make_evidence(subscription.terms), actor=make_user())
    assert not subscription.consents.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("actor", ["owner", "staff", None, "support:ticket-42"])
def test_the_owner_staff_and_the_system_may_consent(actor: str | None) -> None:
    subscription = make_subscription(auto_renew=False)
    users: dict[str | None, Actor] = {"owner": subscription.user, "staff": make_user(is_staff=True)}
    who = users.get(actor, actor)
    consent = record_consent(subscription, make_evidence(subscription.terms), actor=who)
    assert consent.user == subscription.user


def test_not_allowed_is_a_permission_denied_django_answers_403() -> None:
    assert issubclass(NotAllowed, PermissionDenied)


# --- a first renewal too soon for its notice ------------------------------------------------------

SIGNUP = dt.datetime(2027, 2, 10, 1, tzinfo=dt.UTC)  # 9:00 in Shanghai


@pytest.mark.parametrize("trial_days", [3, 5])
def test_cn_refuses_a_trial_that_ends_before_its_reminder_can_go_out(trial_days: int) -> None:
    """cn: the reminder is due 5 days before the first charge, and the sweep keeps the retry
    margin (24 hours) for it; a 5-day trial leaves no time at all."""
    terms = make_terms(trial_days=trial_days)
    with freeze_time(SIGNUP), pytest.raises(FirstRenewalTooSoon) as refused:
        subscribe(make_user(), terms, make_evidence(terms), time_zone="Asia/Shanghai")
    assert (refused.value.policy, refused.value.rule_id) == ("cn", "renewal-reminder")
    assert refused.value.renewal_at == SIGNUP + dt.timedelta(days=trial_days)
    assert refused.value.notice_by == SIGNUP + dt.timedelta(days=trial_days - 5)
    assert "longer free trial or first term" in str(refused.value)
    assert not Subscription.objects.exists()
    assert not Consent.objects.exists()
    assert not AuditEvent.objects.exists()


def test_cn_accepts_a_trial_that_leaves_the_retry_margin_exactly() -> None:
    terms = make_terms(trial_days=6)  # the reminder is due 24 hours after signing up
    with freeze_time(SIGNUP):
        subscription = subscribe(make_user(), terms, make_evidence(terms), time_zone="UTC")
    assert subscription.next_renewal_at == SIGNUP + dt.timedelta(days=6)
    assert subscription.notices.get().status == "planned"


def test_a_subscription_without_the_trial_is_judged_by_its_first_term() -> None:
    terms = make_terms(trial_days=3)
    with freeze_time(SIGNUP):
        subscription = subscribe(make_user(), terms, make_evidence(terms), trial=False)
    assert subscription.next_renewal_at == dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC)


def test_a_pack_may_defer_the_first_renewal_until_its_notice_can_go_out(
    settings: Settings,
) -> None:
    settings.RENEWALS = {
        **settings.RENEWALS,
        "POLICIES": {"cn-late": {"extends": "cn", "short_first_term": "defer"}},
    }
    terms = make_terms(trial_days=3)
    with freeze_time(SIGNUP):
        subscription = subscribe(
            make_user(), terms, make_evidence(terms), time_zone="Asia/Shanghai", policy="cn-late"
        )
    # 5 days for the reminder, plus the retry margin, after signing up.
    deferred = SIGNUP + dt.timedelta(days=6)
    assert (subscription.next_renewal_at, subscription.trial_ends_at) == (deferred, deferred)
    notice = subscription.notices.get()
    assert notice.status == "planned"
    assert notice.window_closes_at == SIGNUP + dt.timedelta(days=1)
    event = subscription.audit_events.get(kind="subscribed")
    offered = SIGNUP + dt.timedelta(days=3)
    assert event.data["first_renewal_deferred_from"] == offered.isoformat()


# --- new terms, and consent to a higher price, end to end ----------------------------------------


def test_new_terms_are_scheduled_once_and_their_notices_planned() -> None:
    terms = make_terms()
    with freeze_time(SIGNUP):
        subscription = subscribe(make_user(), terms, make_evidence(terms))
    dearer = make_terms(amount="30.00")
    with freeze_time(SIGNUP + dt.timedelta(days=5)):
        schedule_new_terms(subscription, dearer, actor="pricing:2027")
        schedule_new_terms(subscription, dearer, actor="pricing:2027")
    subscription.refresh_from_db()
    assert subscription.upcoming_terms == dearer
    (event,) = subscription.audit_events.filter(kind="new_terms_scheduled")
    assert event.data["replaces_terms_hash"] == terms.content_hash
    assert event.actor == "pricing:2027"
    assert set(subscription.notices.values_list("rule_id", flat=True)) == {
        "renewal-reminder",
        "price-change-consent",
    }

    subscription = schedule_new_terms(subscription, terms)  # back to the current terms
    assert subscription.upcoming_terms_id is None
    assert subscription.notices.get(rule_id="price-change-consent").status == "withdrawn"


def test_new_terms_for_an_ended_subscription_are_refused() -> None:
    subscription = make_subscription(status=Status.CANCELED, auto_renew=False)
    with pytest.raises(IllegalTransition):
        schedule_new_terms(subscription, make_terms(amount="30.00"))
    subscription.refresh_from_db()
    assert subscription.upcoming_terms is None


@pytest.mark.usefixtures("reachable_users")
@pytest.mark.parametrize("agrees", [True, False])
def test_a_higher_price_is_asked_about_and_charged_only_once_agreed(
    user: User, agrees: bool
) -> None:
    """cn, through the services: the request for consent goes out with the link to agree, the
    user agrees (or not), and the renewal charges the new price (or the subscription ends at
    the price agreed)."""
    Device.objects.create(user=user, platform="android", provider="fcm", token="tok")
    subscription = subscribe_with_consent(user)
    renewal = subscription.next_renewal_at
    assert renewal is not None
    dearer = make_terms(amount="30.00")
    with freeze_time(renewal - dt.timedelta(days=20)):
        subscription = schedule_new_terms(subscription, dearer)
    for notice in subscription.notices.order_by("send_at"):
        with freeze_time(notice.send_at):
            send_due_notices()
    request, reminder = (m.body for m in locmem.outbox if isinstance(m, SMSMessage))
    consent_link = f"https://shop.example/subscriptions/#subscription-{subscription.pk}"
    assert "25.00 CNY" in request
    assert "30.00 CNY" in request
    assert consent_link in request
    assert "30.00 CNY" in reminder
    assert consent_link not in reminder
    pushed = [m.url for m in locmem.outbox if isinstance(m, PushMessage)]
    assert pushed[0] == consent_link  # the request's push opens the page to agree on
    assert str(pushed[1]).startswith("https://shop.example/c/")  # the reminder's: cancel link
    if agrees:
        with freeze_time(renewal - dt.timedelta(days=2)):
            record_consent(subscription, make_evidence(dearer), actor=user)

    run = run_due_renewals(renewal)

    subscription.refresh_from_db()
    if agrees:
        assert (run.renewed, subscription.status, subscription.terms) == (1, "active", dearer)
    else:
        assert (run.lapsed, subscription.status, subscription.auto_renew) == (1, "expired", False)
        assert subscription.terms.amount == Decimal("25.00")
