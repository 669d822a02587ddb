"""Consent is refused unless it is affirmative, unticked at first, separate and current."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection

from renewals.exceptions import (
    AlreadySubscribed,
    CheckoutKeyReused,
    ConsentBundled,
    ConsentMissing,
    ConsentNotAffirmative,
    ConsentPreTicked,
    IllegalTransition,
    NotAllowed,
    StaleTermsHash,
    TrialAlreadyUsed,
)
from renewals.models import AuditEvent, Consent, RenewalNotice, Status, Subscription
from renewals.services import record_consent, subscribe, trial_available

from ..concurrency import run_concurrently
from .factories import make_evidence, make_subscription, make_terms, make_user

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
def test_subscribe_refuses_invalid_consent_and_writes_nothing(overrides, error):
    user, terms = make_user(), make_terms()
    with pytest.raises(error):
        subscribe(user, terms, make_evidence(terms, **overrides), time_zone="Asia/Shanghai")
    assert not Subscription.objects.exists()
    assert not Consent.objects.exists()
    assert not AuditEvent.objects.exists()


def test_subscribe_without_consent_is_refused():
    with pytest.raises(ConsentMissing, match="No valid consent"):
        subscribe(make_user(), make_terms(), None)
    assert not Subscription.objects.exists()


def test_stale_hash_names_both_hashes():
    terms = make_terms()
    with pytest.raises(StaleTermsHash) as info:
        subscribe(make_user(), terms, make_evidence(terms, terms_hash="ab" * 32))
    assert info.value.current == terms.content_hash
    assert "abababababab" in str(info.value)


def test_bundled_names_the_other_agreement():
    terms = make_terms()
    with pytest.raises(ConsentBundled, match="terms of service"):
        subscribe(make_user(), terms, make_evidence(terms, bundled_with=("terms of service",)))


def test_subscribe_stores_evidence_and_plans_notices():
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


def test_trial_subscription_renews_when_the_trial_ends():
    terms = make_terms(trial_days=7)
    subscription = subscribe(make_user(), terms, make_evidence(terms), time_zone="UTC")
    assert subscription.status == Status.TRIALING
    assert subscription.next_renewal_at == subscription.trial_ends_at
    assert (subscription.trial_ends_at - subscription.current_period_start).days == 7


def test_record_consent_binds_to_the_subscriptions_current_terms():
    subscription = make_subscription()
    other = make_terms(amount="30.00")
    with pytest.raises(StaleTermsHash):
        record_consent(subscription, make_evidence(other))
    assert not subscription.consents.exists()


def test_consent_rows_are_insert_only():
    terms = make_terms()
    subscription = subscribe(make_user(), terms, make_evidence(terms))
    consent = subscription.consents.get()
    consent.user_agent = "edited"
    with pytest.raises(Exception, match="insert-only"):
        consent.save()


def test_an_unknown_time_zone_is_refused_before_anything_is_written():
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
def test_malformed_evidence_is_refused_when_built(overrides, error, fragment):
    with pytest.raises(error, match=fragment):
        make_evidence(make_terms(), **overrides)


def test_consent_to_an_ended_subscription_is_refused():
    subscription = make_subscription(status=Status.CANCELED, auto_renew=False)
    with pytest.raises(IllegalTransition):
        record_consent(subscription, make_evidence(subscription.terms))
    assert not subscription.consents.exists()


def test_the_audit_chain_holds_a_hash_of_the_evidence_not_the_personal_data():
    terms = make_terms()
    subscription = subscribe(make_user(), terms, make_evidence(terms))
    consent = subscription.consents.get()
    event = subscription.audit_events.get(kind="consent_granted")
    assert event.data["evidence_sha256"] == consent.evidence_hash()
    assert "203.0.113.7" not in str(event.data)
    assert "pytest" not in str(event.data)


def test_a_naive_start_is_refused():
    terms = make_terms()
    with pytest.raises(ValueError, match="aware"):
        subscribe(make_user(), terms, make_evidence(terms), start=dt.datetime(2027, 1, 1))


def test_renewal_times_are_whole_seconds():
    terms = make_terms()
    start = dt.datetime(2027, 1, 31, 9, 30, 15, 987654, tzinfo=dt.UTC)
    subscription = subscribe(make_user(), terms, make_evidence(terms), start=start, time_zone="UTC")
    assert subscription.next_renewal_at == dt.datetime(2027, 2, 28, 9, 30, 15, tzinfo=dt.UTC)


def test_the_same_checkout_submitted_twice_starts_one_subscription():
    user, terms = make_user(), make_terms()
    first = subscribe(user, terms, make_evidence(terms), request_key="a" * 32)
    again = subscribe(user, terms, make_evidence(terms), request_key="a" * 32)
    assert again.pk == first.pk
    assert Subscription.objects.count() == 1
    assert Consent.objects.count() == 1


def test_a_checkout_key_of_another_user_is_refused():
    terms = make_terms()
    subscribe(make_user(), terms, make_evidence(terms), request_key="a" * 32)
    with pytest.raises(CheckoutKeyReused, match="another user"):
        subscribe(make_user(), terms, make_evidence(terms), request_key="a" * 32)
    assert Subscription.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_submissions_of_one_checkout_start_one_subscription():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL.")
    user, terms = make_user(), make_terms()

    def submit(index):
        return subscribe(user, terms, make_evidence(terms), request_key="c" * 32)

    results = run_concurrently(submit)
    assert {s.pk for s in results} == {Subscription.objects.get().pk}
    assert Consent.objects.count() == 1


@pytest.mark.parametrize(
    ("given", "stored"),
    [("2001:DB8::1", "2001:db8::1"), ("::ffff:1.2.3.4", "::ffff:1.2.3.4"), ("203.0.113.7", None)],
)
def test_the_evidence_hash_matches_the_stored_row(given, stored):
    terms = make_terms()
    subscription = subscribe(make_user(), terms, make_evidence(terms, ip_address=given))
    consent = Consent.objects.get(subscription=subscription)  # as read back from the database
    assert consent.ip_address == (stored or given)
    event = subscription.audit_events.get(kind="consent_granted")
    assert event.data["evidence_sha256"] == consent.evidence_hash()


def test_an_invalid_ip_address_is_refused_when_built():
    with pytest.raises(ValueError, match="not an IP address"):
        make_evidence(make_terms(), ip_address="localhost")


def test_a_checkout_key_replayed_with_other_terms_is_refused():
    user = make_user()
    first, second = make_terms(), make_terms(amount="99.00")
    subscribe(user, first, make_evidence(first), request_key="d" * 32)
    with pytest.raises(CheckoutKeyReused, match="other terms"):
        subscribe(user, second, make_evidence(second), request_key="d" * 32)


def test_the_checkout_key_is_checked_again_under_the_lock():
    """A submission that passed the first look-up before the first one committed returns it."""
    user, terms = make_user(), make_terms()
    first = subscribe(user, terms, make_evidence(terms), request_key="e" * 32)
    with mock.patch("renewals.services.consent._started_by", side_effect=[None, first]):
        again = subscribe(user, terms, make_evidence(terms), request_key="e" * 32)
    assert again.pk == first.pk
    assert Subscription.objects.count() == 1


# --- one live subscription per service ---------------------------------------------------


def test_a_second_live_subscription_to_the_same_service_is_refused():
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
def test_every_live_status_blocks_a_second_subscription(status):
    existing = make_subscription(status=status, auto_renew=False)
    with pytest.raises(AlreadySubscribed):
        subscribe(existing.user, existing.terms, make_evidence(existing.terms))


@pytest.mark.parametrize("status", [Status.EXPIRED, Status.CANCELED, Status.PENDING])
def test_an_ended_subscription_does_not_block_a_new_one(status):
    ended = make_subscription(status=status, auto_renew=False)
    again = subscribe(ended.user, ended.terms, make_evidence(ended.terms))
    assert again.pk != ended.pk
    assert again.is_live


def test_other_services_and_other_users_are_not_blocked():
    user, terms = make_user(), make_terms()
    subscribe(user, terms, make_evidence(terms))
    other_service = make_terms(service_name="Example Max")
    assert subscribe(user, other_service, make_evidence(other_service)).is_live
    assert subscribe(make_user(), terms, make_evidence(terms)).is_live


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_checkouts_to_one_service_start_one_subscription():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL.")
    user, terms = make_user(), make_terms()

    def submit(index):
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


def test_the_free_trial_is_given_once_per_user_and_service():
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
    assert (again.next_renewal_at - again.current_period_start).days in (28, 29, 30, 31)
    assert trial_available(make_user(), terms)  # another user still gets it


def test_the_trial_counts_per_service_not_per_terms():
    user, terms = make_user(), make_terms(trial_days=7)
    subscribe(user, terms, make_evidence(terms)).transition_to(Status.CANCELED)
    assert not trial_available(user, make_terms(trial_days=14))
    assert trial_available(user, make_terms(trial_days=7, service_name="Example Max"))


def test_terms_may_give_the_trial_every_time():
    user = make_user()
    terms = make_terms(trial_days=7, trial_once_per_user=False)
    subscribe(user, terms, make_evidence(terms)).transition_to(Status.CANCELED)
    assert trial_available(user, terms)
    assert subscribe(user, terms, make_evidence(terms)).status == Status.TRIALING


def test_terms_without_a_trial_never_offer_one():
    user, terms = make_user(), make_terms()
    assert not trial_available(user, terms)
    assert subscribe(user, terms, make_evidence(terms), trial=True).trial_ends_at is None


def test_a_subscription_without_its_trial_did_not_use_it():
    user, terms = make_user(), make_terms(trial_days=7)
    subscribe(user, terms, make_evidence(terms), trial=False).transition_to(Status.CANCELED)
    assert trial_available(user, terms)


# --- who may consent -----------------------------------------------------------------------


def test_another_user_cannot_consent_for_a_subscription():
    subscription = make_subscription(auto_renew=False)
    with pytest.raises(NotAllowed, match="belongs to another user"):
        record_consent(subscription, make_evidence(subscription.terms), actor=make_user())
    assert not subscription.consents.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("actor", ["owner", "staff", None, "support:ticket-42"])
def test_the_owner_staff_and_the_system_may_consent(actor):
    subscription = make_subscription(auto_renew=False)
    actor = {"owner": subscription.user, "staff": make_user(is_staff=True)}.get(actor, actor)
    consent = record_consent(subscription, make_evidence(subscription.terms), actor=actor)
    assert consent.user == subscription.user


def test_not_allowed_is_a_permission_denied_django_answers_403():
    assert issubclass(NotAllowed, PermissionDenied)
