"""The renewal gate lets a charge through only when consent and notices are in order."""

from __future__ import annotations

import datetime as dt

import pytest
from freezegun import freeze_time

from renewals.models import AuditEvent, NoticeStatus
from renewals.policies import GateRemedy
from renewals.services import cancel_auto_renewal, renewal_gate, resume_auto_renewal, subscribe
from renewals.signals import renewal_held

from .factories import make_evidence, make_subscription, make_terms, make_user
from .fakes import rolled_back

pytestmark = pytest.mark.django_db

RENEWAL = dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC)


@pytest.fixture
def subscription():
    terms = make_terms()
    with freeze_time(RENEWAL - dt.timedelta(days=30)):
        return subscribe(make_user(), terms, make_evidence(terms), time_zone="Asia/Shanghai")


def _give(subscription, at):
    notice = subscription.notices.get(renewal_at=subscription.next_renewal_at)
    notice.status = NoticeStatus.SENT
    notice.sent_at = at
    notice.save()
    return notice


def test_allowed_when_the_notice_went_out_in_its_window(subscription):
    notice = _give(subscription, subscription.next_renewal_at - dt.timedelta(days=6))
    decision = renewal_gate(subscription, notice.renewal_at)
    assert decision.allowed
    assert decision.reasons == ()
    event = AuditEvent.objects.filter(kind="renewal_gate").last()
    assert event.data["allowed"] is True


@pytest.fixture
def held():
    """The ``renewal_held`` signals sent."""
    sent = []
    renewal_held.connect(lambda **kw: sent.append(kw), weak=False, dispatch_uid="t")
    yield sent
    renewal_held.disconnect(dispatch_uid="t")


@pytest.mark.parametrize("late", [dt.timedelta(seconds=1), dt.timedelta(days=1)])
def test_a_notice_given_after_the_window_closed_holds_the_charge(
    subscription, late, held, django_capture_on_commit_callbacks
):
    renewal_at = subscription.next_renewal_at
    _give(subscription, renewal_at - dt.timedelta(days=5) + late)
    with django_capture_on_commit_callbacks(execute=True):
        decision = renewal_gate(subscription, renewal_at)
        assert held == []  # not before the decision is committed
    assert not decision.allowed
    assert decision.remedy == GateRemedy.DEFER
    assert "renewal-reminder" in decision.reasons[0]
    assert held[0]["decision"] == decision


def test_a_refusal_rolled_back_is_not_announced(
    subscription, held, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        rolled_back(lambda: renewal_gate(subscription, subscription.next_renewal_at))
    assert held == []
    assert not AuditEvent.objects.filter(kind="renewal_gate").exists()


def test_exactly_five_days_before_still_counts(subscription):
    renewal_at = subscription.next_renewal_at
    _give(subscription, renewal_at - dt.timedelta(days=5))
    assert renewal_gate(subscription, renewal_at).allowed


def test_a_notice_never_sent_holds_the_charge(subscription):
    decision = renewal_gate(subscription, subscription.next_renewal_at)
    assert not decision.allowed
    assert "status planned" in decision.reasons[0]


def test_a_renewal_with_no_planned_notice_holds_the_charge(subscription):
    other_time = subscription.next_renewal_at + dt.timedelta(days=1)
    decision = renewal_gate(subscription, other_time)
    assert decision.reasons == ("notice 'renewal-reminder' was never planned",)


def test_no_consent_means_lapse(subscription):
    _give(subscription, subscription.next_renewal_at - dt.timedelta(days=6))
    cancel_auto_renewal(subscription, actor=None, via="system")
    decision = renewal_gate(subscription, subscription.next_renewal_at)
    assert not decision.allowed
    assert decision.remedy == GateRemedy.LAPSE
    assert decision.reasons == ("auto-renewal is off",)


def test_consent_to_other_terms_means_lapse():
    subscription = make_subscription()  # created without any consent
    decision = renewal_gate(subscription, subscription.next_renewal_at)
    assert decision.reasons == ("no unrevoked consent to the current terms",)
    assert decision.remedy == GateRemedy.LAPSE


def test_consent_to_the_upcoming_terms_lets_their_renewal_through(subscription):
    """A resume while a new price is pending consents to the new terms, which the renewal
    charges."""
    dearer = make_terms(amount="30.00")
    cancel_auto_renewal(subscription, actor=None, via="system")
    subscription.upcoming_terms = dearer
    subscription.save(update_fields=["upcoming_terms"])
    resume_auto_renewal(subscription, evidence=make_evidence(dearer), actor=subscription.user)
    _give(subscription, subscription.next_renewal_at - dt.timedelta(days=6))

    assert renewal_gate(subscription, subscription.next_renewal_at).allowed


def test_fr_pack_lapses_instead_of_deferring(settings):
    terms = make_terms(currency="EUR", interval="year", locale="fr")
    with freeze_time(RENEWAL - dt.timedelta(days=400)):
        subscription = subscribe(
            make_user(), terms, make_evidence(terms), time_zone="Europe/Paris", policy="fr"
        )
    decision = renewal_gate(subscription, subscription.next_renewal_at)
    assert decision.remedy == GateRemedy.LAPSE
