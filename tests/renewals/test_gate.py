"""The renewal gate lets a charge through only when consent and notices are in order."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from renewals.models import (
    AuditEvent,
    Consent,
    NoticeStatus,
    RenewalNotice,
    RenewalTerms,
    Subscription,
)
from renewals.policies import GateRemedy
from renewals.services import (
    cancel_auto_renewal,
    new_price_awaits_consent,
    record_consent,
    renewal_gate,
    resume_auto_renewal,
    schedule_new_terms,
    subscribe,
)
from renewals.signals import renewal_held

from .factories import (
    FIRST_RENEWAL,
    make_evidence,
    make_subscription,
    make_terms,
    make_user,
    renewal_of,
    revoke_consent,
)
from .fakes import rolled_back

pytestmark = pytest.mark.django_db

RENEWAL = FIRST_RENEWAL  # of the shared ``subscription``
PRICE_CONSENT = "price-change-consent"


def _give(
    subscription: Subscription, at: dt.datetime, rule_id: str = "renewal-reminder"
) -> RenewalNotice:
    notice = subscription.notices.get(renewal_at=renewal_of(subscription), rule_id=rule_id)
    notice.status = NoticeStatus.SENT
    notice.sent_at = at
    notice.save()
    return notice


def test_allowed_when_the_notice_went_out_in_its_window(subscription: Subscription) -> None:
    notice = _give(subscription, renewal_of(subscription) - dt.timedelta(days=6))
    decision = renewal_gate(subscription, notice.renewal_at)
    assert decision.allowed
    assert decision.reasons == ()
    event = AuditEvent.objects.filter(kind="renewal_gate").last()
    assert event is not None
    assert event.data["allowed"] is True


@pytest.fixture
def held() -> Iterator[list[dict[str, Any]]]:
    """The ``renewal_held`` signals sent."""
    sent = []
    renewal_held.connect(lambda **kw: sent.append(kw), weak=False, dispatch_uid="t")
    yield sent
    renewal_held.disconnect(dispatch_uid="t")


@pytest.mark.parametrize("late", [dt.timedelta(seconds=1), dt.timedelta(days=1)])
def test_a_notice_given_after_the_window_closed_holds_the_charge(
    subscription: Subscription,
    late: dt.timedelta,
    held: list[dict[str, Any]],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    renewal_at = renewal_of(subscription)
    _give(subscription, renewal_at - dt.timedelta(days=5) + late)
    with django_capture_on_commit_callbacks(execute=True):
        decision = renewal_gate(subscription, renewal_at)
        assert held == []  # not before the decision is committed
    assert not decision.allowed
    assert decision.remedy == GateRemedy.DEFER
    assert "renewal-reminder" in decision.reasons[0]
    assert held[0]["decision"] == decision


def test_a_refusal_rolled_back_is_not_announced(
    subscription: Subscription,
    held: list[dict[str, Any]],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        rolled_back(lambda: renewal_gate(subscription, renewal_of(subscription)))
    assert held == []
    assert not AuditEvent.objects.filter(kind="renewal_gate").exists()


def test_exactly_five_days_before_still_counts(subscription: Subscription) -> None:
    renewal_at = renewal_of(subscription)
    _give(subscription, renewal_at - dt.timedelta(days=5))
    assert renewal_gate(subscription, renewal_at).allowed


def test_a_notice_never_sent_holds_the_charge(subscription: Subscription) -> None:
    decision = renewal_gate(subscription, renewal_of(subscription))
    assert not decision.allowed
    assert "status planned" in decision.reasons[0]


def test_a_renewal_with_no_planned_notice_holds_the_charge(subscription: Subscription) -> None:
    other_time = renewal_of(subscription) + dt.timedelta(days=1)
    decision = renewal_gate(subscription, other_time)
    assert decision.reasons == ("notice 'renewal-reminder' was never planned",)


def test_no_consent_means_lapse(subscription: Subscription) -> None:
    _give(subscription, renewal_of(subscription) - dt.timedelta(days=6))
    cancel_auto_renewal(subscription, actor=None, via="system")
    decision = renewal_gate(subscription, renewal_of(subscription))
    assert not decision.allowed
    assert decision.remedy == GateRemedy.LAPSE
    assert decision.reasons == ("auto-renewal is off",)


def test_no_consent_at_all_means_lapse() -> None:
    subscription = make_subscription()  # created without any consent
    decision = renewal_gate(subscription, renewal_of(subscription))
    assert decision.reasons == ("no unrevoked consent to the current terms",)
    assert decision.remedy == GateRemedy.LAPSE


def test_consent_to_other_terms_only_means_lapse(subscription: Subscription) -> None:
    """Unrevoked consent on record, with every notice given, but to terms the renewal does not
    charge: the gate compares the terms hashes."""
    _give(subscription, renewal_of(subscription) - dt.timedelta(days=6))
    other = make_terms(amount="99.00")
    revoke_consent(subscription, at=RENEWAL - dt.timedelta(days=20))
    Consent.objects.create(
        subscription=subscription,
        user=subscription.user,
        terms=other,
        terms_hash=other.content_hash,
        policy=subscription.policy,
        granted_at=RENEWAL - dt.timedelta(days=20),
        channel="web",
        form_id="tests.other_offer",
        control_initially_unticked=True,
    )
    decision = renewal_gate(subscription, renewal_of(subscription))
    assert (decision.allowed, decision.remedy) == (False, GateRemedy.LAPSE)
    assert decision.reasons == ("no unrevoked consent to the current terms",)


def test_consent_revoked_while_auto_renewal_stays_on_means_lapse(
    revoked_consent_subscription: Subscription,
) -> None:
    subscription = revoked_consent_subscription
    _give(subscription, renewal_of(subscription) - dt.timedelta(days=6))
    assert subscription.auto_renew
    decision = renewal_gate(subscription, renewal_of(subscription))
    assert (decision.allowed, decision.remedy) == (False, GateRemedy.LAPSE)
    assert decision.reasons == ("no unrevoked consent to the current terms",)


def test_a_notice_given_the_instant_its_window_opens_counts(subscription: Subscription) -> None:
    notice = subscription.notices.get()
    _give(subscription, notice.window_opens_at)
    assert renewal_gate(subscription, notice.renewal_at).allowed
    _give(subscription, notice.window_opens_at - dt.timedelta(microseconds=1))
    assert not renewal_gate(subscription, notice.renewal_at).allowed


def test_consent_to_the_upcoming_terms_lets_their_renewal_through(
    subscription: Subscription,
) -> None:
    """A resume while a new price is pending consents to the new terms, which the renewal
    charges."""
    dearer = make_terms(amount="30.00")
    cancel_auto_renewal(subscription, actor=None, via="system")
    subscription.upcoming_terms = dearer
    subscription.save(update_fields=["upcoming_terms"])
    resume_auto_renewal(subscription, evidence=make_evidence(dearer), actor=subscription.user)
    _give(subscription, renewal_of(subscription) - dt.timedelta(days=6))
    _give(subscription, renewal_of(subscription) - dt.timedelta(days=8), PRICE_CONSENT)

    assert renewal_gate(subscription, renewal_of(subscription)).allowed


def test_fr_pack_lapses_instead_of_deferring(settings: Settings) -> None:
    terms = make_terms(currency="EUR", interval="year", locale="fr")
    with freeze_time(RENEWAL - dt.timedelta(days=400)):
        subscription = subscribe(
            make_user(), terms, make_evidence(terms), time_zone="Europe/Paris", policy="fr"
        )
    decision = renewal_gate(subscription, renewal_of(subscription))
    assert decision.remedy == GateRemedy.LAPSE


# --- a new price ------------------------------------------------------------------------------


def _reprice(subscription: Subscription, amount: str, *, at: dt.datetime) -> RenewalTerms:
    """New terms at ``amount`` from the next renewal on, scheduled at ``at``."""
    terms = make_terms(amount=amount)
    with freeze_time(at):
        schedule_new_terms(subscription, terms)
    return terms


def test_cn_a_higher_price_needs_consent_to_the_new_terms(subscription: Subscription) -> None:
    renewal = renewal_of(subscription)
    dearer = _reprice(subscription, "30.00", at=renewal - dt.timedelta(days=20))
    request = subscription.notices.get(rule_id=PRICE_CONSENT)
    assert request.message == "renewals.price_change_consent"
    assert (request.window_opens_at, request.window_closes_at) == (
        renewal - dt.timedelta(days=30),
        renewal - dt.timedelta(days=7),
    )
    _give(subscription, renewal - dt.timedelta(days=8), PRICE_CONSENT)
    _give(subscription, renewal - dt.timedelta(days=6))

    decision = renewal_gate(subscription, renewal)
    assert (decision.allowed, decision.remedy) == (False, GateRemedy.LAPSE)
    assert decision.reasons == (
        "no consent to the new price: the renewal charges 30.00 CNY, 25.00 CNY was agreed",
    )
    assert new_price_awaits_consent(subscription)

    record_consent(subscription, make_evidence(dearer), actor=subscription.user)
    assert not new_price_awaits_consent(subscription)
    assert renewal_gate(subscription, renewal).allowed


@pytest.mark.parametrize(("amount", "currency"), [("20.00", "CNY"), ("25.00", "CNY")])
def test_cn_a_lower_or_equal_price_renews_on_the_consent_given(
    subscription: Subscription, amount: str, currency: str
) -> None:
    renewal = renewal_of(subscription)
    with freeze_time(renewal - dt.timedelta(days=20)):
        schedule_new_terms(
            subscription, make_terms(amount=amount, currency=currency, renewal_wording="New.")
        )
    assert not subscription.notices.filter(rule_id=PRICE_CONSENT).exists()
    _give(subscription, renewal - dt.timedelta(days=6))
    assert renewal_gate(subscription, renewal).allowed


def test_cn_the_same_amount_in_another_currency_needs_consent(subscription: Subscription) -> None:
    renewal = renewal_of(subscription)
    with freeze_time(renewal - dt.timedelta(days=20)):
        schedule_new_terms(subscription, make_terms(currency="HKD"))
    _give(subscription, renewal - dt.timedelta(days=8), PRICE_CONSENT)
    _give(subscription, renewal - dt.timedelta(days=6))
    assert renewal_gate(subscription, renewal).reasons[0].startswith("no consent to the new")


def test_a_new_price_the_user_was_never_asked_about_is_deferred_not_lapsed(
    subscription: Subscription,
) -> None:
    """Three days before the renewal the request for consent cannot go out in its window: the
    notice's remedy (defer: ask, and renew later) wins over the consent's (lapse)."""
    renewal = renewal_of(subscription)
    _reprice(subscription, "30.00", at=renewal - dt.timedelta(days=3))
    assert subscription.notices.get(rule_id=PRICE_CONSENT).status == NoticeStatus.MISSED
    _give(subscription, renewal - dt.timedelta(days=6))
    decision = renewal_gate(subscription, renewal)
    assert decision.remedy is GateRemedy.DEFER
    late, unconsented = decision.reasons
    assert late.startswith("notice 'price-change-consent' was not given between")
    assert unconsented.startswith("no consent to the new price")


def test_a_pack_may_hold_the_renewal_until_the_user_consents(
    subscription: Subscription, settings: Settings
) -> None:
    renewal = renewal_of(subscription)
    settings.RENEWALS = {
        **settings.RENEWALS,
        "POLICIES": {"cn": {"extends": "cn", "price_change": {"without_consent": "defer"}}},
    }
    _reprice(subscription, "30.00", at=renewal - dt.timedelta(days=20))
    _give(subscription, renewal - dt.timedelta(days=8), PRICE_CONSENT)
    _give(subscription, renewal - dt.timedelta(days=6))
    assert renewal_gate(subscription, renewal).remedy is GateRemedy.DEFER


def test_no_fresh_consent_while_the_pack_is_not_in_force(subscription: Subscription) -> None:
    renewal = renewal_of(subscription)
    Subscription.objects.filter(pk=subscription.pk).update(policy="uk")  # on_increase, not in force
    subscription.refresh_from_db()
    _reprice(subscription, "30.00", at=renewal - dt.timedelta(days=20))
    assert not new_price_awaits_consent(subscription)
    assert renewal_gate(subscription, renewal).allowed


# --- California: calendar days in the user's zone -----------------------------------------------

LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def _california(renewal_local: dt.datetime) -> Subscription:
    """A yearly us-ca subscription in Los Angeles that first renews at ``renewal_local``."""
    terms = make_terms(currency="USD", interval="year", amount="120.00", locale="en")
    start = renewal_local.replace(year=renewal_local.year - 1)
    with freeze_time(start):
        subscription = subscribe(
            make_user(),
            terms,
            make_evidence(terms),
            time_zone="America/Los_Angeles",
            policy="us-ca",
        )
    assert subscription.next_renewal_at == renewal_local
    return subscription


def _local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=LOS_ANGELES)


# A renewal at 00:30 on 2027-03-20, after the clocks went forward on 2027-03-14: "not more than
# 45 days before" opens at the start of 2027-02-03; 45 x 24 hours before is 23:30 on 02-02.
SPRING_RENEWAL = _local(2027, 3, 20, 0, 30)
# A renewal at 23:30 on 2027-11-10, after the clocks went back on 2027-11-07: "at least 15 days
# before" closes at the end of 2027-10-26; 15 x 24 hours before is 00:30 on 10-27, 14 days.
AUTUMN_RENEWAL = _local(2027, 11, 10, 23, 30)


@pytest.mark.parametrize(
    ("renewal_local", "given_local", "allowed"),
    [
        pytest.param(SPRING_RENEWAL, _local(2027, 2, 2, 23, 45), False, id="spring-46-days"),
        pytest.param(SPRING_RENEWAL, _local(2027, 2, 3), True, id="spring-45-days"),
        pytest.param(SPRING_RENEWAL, _local(2027, 3, 5, 23, 59, 59), True, id="spring-15-days"),
        pytest.param(SPRING_RENEWAL, _local(2027, 3, 6), False, id="spring-14-days"),
        pytest.param(AUTUMN_RENEWAL, _local(2027, 9, 25, 23, 59, 59), False, id="autumn-46-days"),
        pytest.param(AUTUMN_RENEWAL, _local(2027, 9, 26), True, id="autumn-45-days"),
        pytest.param(AUTUMN_RENEWAL, _local(2027, 10, 26, 23, 59, 59), True, id="autumn-15-days"),
        pytest.param(AUTUMN_RENEWAL, _local(2027, 10, 27, 0, 15), False, id="autumn-14-days"),
    ],
)
def test_us_ca_counts_calendar_days_in_the_users_zone_across_daylight_saving(
    renewal_local: dt.datetime, given_local: dt.datetime, allowed: bool
) -> None:
    subscription = _california(renewal_local)
    notice = subscription.notices.get(rule_id="annual-term-renewal")
    notice.status, notice.sent_at = NoticeStatus.SENT, given_local.astimezone(dt.UTC)
    notice.save()
    assert renewal_gate(subscription, renewal_of(subscription)).allowed is allowed
