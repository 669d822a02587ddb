"""At each renewal the gate decides, and the run acts on it: renew, hold and defer, or lapse."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from freezegun import freeze_time
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from notifications.backends import locmem
from notifications.messages import SendResult, SMSMessage
from renewals.exceptions import GatewayError
from renewals.gateways.base import Period
from renewals.models import AuditEvent, NoticeStatus, RenewalNotice, Status, Subscription
from renewals.services import (
    RenewalRun,
    cancel_auto_renewal,
    plan_notices,
    run_due_renewals,
)
from renewals.services.sweep import send_due_notices
from renewals.signals import renewal_held
from tests.concurrency import run_concurrently

from .factories import (
    FIRST_RENEWAL,
    PHONE,
    SUBSCRIBED_AT,
    make_subscription,
    make_terms,
    make_user,
    revoke_consent,
    subscribe_with_consent,
)
from .fakes import RecordingGateway

pytestmark = pytest.mark.django_db

START = SUBSCRIBED_AT  # 09:00 in Shanghai
RENEWAL = FIRST_RENEWAL  # one month on
NEXT_RENEWAL = dt.datetime(2027, 4, 10, 1, tzinfo=dt.UTC)
#: cn: the notice's window closes 5 days before; a deferred renewal comes that long plus the
#: 24 hours' retry margin after the run that deferred it.
DEFERRED = RENEWAL + dt.timedelta(days=6)
LAPSING_PACK = {"cn-lapse": {"extends": "cn", "gate_remedy": "lapse"}}


@pytest.fixture(autouse=True)
def gateway(settings: Settings, reachable_users: None) -> type[RecordingGateway]:
    """Every subscription here is billed by the recording gateway, installed before any is
    started, and its reminders reach the test resolver's users."""
    return RecordingGateway.install(settings, POLICIES=LAPSING_PACK, BASE_URL="https://example.com")


def subscriber(policy: str = "cn", **terms: Any) -> Subscription:
    """A subscription like the shared ``subscription``, on ``terms`` under ``policy``."""
    return subscribe_with_consent(
        make_user(first_name=PHONE, last_name="zh-hans"), make_terms(**terms), policy=policy
    )


@pytest.fixture
def run(
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> Callable[[dt.datetime], RenewalRun]:
    """Run the renewals at a time, with what they do after their commits."""

    def run_at(at: dt.datetime) -> RenewalRun:
        with freeze_time(at), django_capture_on_commit_callbacks(execute=True):
            return run_due_renewals()

    return run_at


def give(subscription: Subscription, renewal_at: dt.datetime = RENEWAL) -> RenewalNotice:
    """Record the notice for the renewal at ``renewal_at`` as given as its window opened."""
    notice = subscription.notices.get(renewal_at=renewal_at)
    notice.status = NoticeStatus.SENT
    notice.sent_at = max(notice.window_opens_at, notice.created_at)
    notice.save()
    return notice


def kinds(subscription: Subscription, since: int = 0) -> list[str]:
    events = AuditEvent.objects.filter(subscription=subscription, pk__gt=since)
    return list(events.order_by("sequence").values_list("kind", flat=True))


def last_event_pk() -> int:
    return AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


# --- allowed -------------------------------------------------------------------------------


def test_nothing_is_due_before_the_renewal(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    run: Callable[[dt.datetime], RenewalRun],
) -> None:
    give(subscription)
    assert run(RENEWAL - dt.timedelta(seconds=1)) == RenewalRun()
    assert gateway.calls == []


def test_an_allowed_renewal_renews_and_plans_the_next_notices(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    run: Callable[[dt.datetime], RenewalRun],
) -> None:
    give(subscription)
    before = last_event_pk()

    assert run(RENEWAL + dt.timedelta(minutes=1)) == RenewalRun(renewed=1)

    assert gateway.calls == [("renew", subscription.pk, RENEWAL)]
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.current_period_start == RENEWAL
    assert subscription.next_renewal_at == NEXT_RENEWAL
    (notice,) = subscription.notices.filter(status=NoticeStatus.PLANNED)
    assert notice.renewal_at == NEXT_RENEWAL
    assert kinds(subscription, before) == ["renewal_gate", "renewed", "notices_planned"]
    renewed = AuditEvent.objects.get(kind="renewed")
    assert renewed.data["next_renewal_at"] == NEXT_RENEWAL.isoformat()
    assert renewed.data["amount"] == "25"
    assert renewed.data["released"] is None

    # Run again: nothing more is due, nothing happens.
    assert run(RENEWAL + dt.timedelta(minutes=2)) == RenewalRun()
    assert len(gateway.calls) == 1


def test_a_trial_ends_in_an_active_subscription(
    gateway: type[RecordingGateway], run: Callable[[dt.datetime], RenewalRun]
) -> None:
    subscription = subscriber(trial_days=14)
    trial_end = START + dt.timedelta(days=14)
    assert subscription.status == Status.TRIALING
    give(subscription, trial_end)
    assert run(trial_end).renewed == 1
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.next_renewal_at == dt.datetime(2027, 3, 24, 1, tzinfo=dt.UTC)


def test_the_upcoming_terms_apply_from_the_renewal(
    subscription: Subscription, run: Callable[[dt.datetime], RenewalRun]
) -> None:
    cheaper = make_terms(amount="20.00")  # cn: a lower price renews on the consent given
    subscription.upcoming_terms = cheaper
    subscription.save()
    give(subscription)
    run(RENEWAL)
    renewed = Subscription.objects.get(pk=subscription.pk)
    assert renewed.terms == cheaper
    assert renewed.upcoming_terms is None
    assert AuditEvent.objects.get(kind="renewed").data["terms_hash"] == cheaper.content_hash


# --- held: defer ---------------------------------------------------------------------------


def _provider_down_for_the_whole_window(subscription: Subscription) -> None:
    (notice,) = subscription.notices.all()
    locmem.next_results[:] = [SendResult.retry("provider_down")] * 100
    at = notice.send_at
    while at <= notice.window_closes_at:
        with freeze_time(at):
            send_due_notices()
        at += dt.timedelta(hours=1)
    with freeze_time(notice.window_closes_at + dt.timedelta(minutes=1)):
        send_due_notices()
    locmem.next_results.clear()
    assert RenewalNotice.objects.get(pk=notice.pk).status == NoticeStatus.MISSED


@pytest.mark.parametrize("sweep", ["provider down", "never swept"])
def test_a_notice_not_given_holds_the_renewal_and_charges_nothing(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    run: Callable[[dt.datetime], RenewalRun],
    sweep: str,
) -> None:
    if sweep == "provider down":
        _provider_down_for_the_whole_window(subscription)
    held = []
    renewal_held.connect(lambda **kw: held.append(kw), weak=False, dispatch_uid="t")
    try:
        assert run(RENEWAL) == RenewalRun(deferred=1)
    finally:
        renewal_held.disconnect(dispatch_uid="t")

    assert gateway.calls == [("hold", subscription.pk, RENEWAL)]  # no "renew"
    assert held[0]["renewal_at"] == RENEWAL
    subscription.refresh_from_db()
    assert subscription.status == Status.ON_HOLD
    assert subscription.held_renewal_at == RENEWAL
    assert subscription.next_renewal_at == DEFERRED
    data = AuditEvent.objects.get(kind="renewal_held").data
    assert data["remedy"] == "defer"
    assert "renewal-reminder" in data["reasons"][0]
    assert AuditEvent.objects.get(kind="renewal_deferred").data["deferred_to"] == (
        DEFERRED.isoformat()
    )


def test_a_deferred_renewal_sends_its_notice_now_and_renews_once_it_is_given(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    run: Callable[[dt.datetime], RenewalRun],
) -> None:
    run(RENEWAL)
    notice = subscription.notices.get(renewal_at=DEFERRED)
    assert notice.status == NoticeStatus.PLANNED
    # The notice goes out at the next daytime hour (10:00 in Shanghai), its window closing a
    # retry margin later: a full 5 days before the deferred renewal.
    assert notice.send_at == dt.datetime(2027, 3, 10, 2, tzinfo=dt.UTC)
    assert notice.window_closes_at == DEFERRED - dt.timedelta(days=5)
    with freeze_time(notice.send_at):
        send_due_notices()
    assert len([m for m in locmem.outbox if isinstance(m, SMSMessage)]) == 1
    assert RenewalNotice.objects.get(pk=notice.pk).status == NoticeStatus.SENT

    assert run(DEFERRED) == RenewalRun(renewed=1)

    assert gateway.calls == [
        ("hold", subscription.pk, RENEWAL),
        ("release", subscription.pk, RENEWAL),
        ("renew", subscription.pk, DEFERRED),
    ]
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.held_renewal_at is None
    assert subscription.current_period_start == DEFERRED
    assert AuditEvent.objects.get(kind="renewed").data["released"] == RENEWAL.isoformat()


def test_a_deferred_renewal_whose_notice_failed_again_is_deferred_again(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    run: Callable[[dt.datetime], RenewalRun],
) -> None:
    run(RENEWAL)
    assert run(DEFERRED) == RenewalRun(deferred=1)
    assert gateway.calls == [("hold", subscription.pk, RENEWAL)]  # held once
    subscription.refresh_from_db()
    assert subscription.status == Status.ON_HOLD
    assert subscription.held_renewal_at == RENEWAL
    assert subscription.next_renewal_at == DEFERRED + dt.timedelta(days=6)


def test_a_deferred_trial_end_still_needs_the_trial_rules(
    gateway: type[RecordingGateway], run: Callable[[dt.datetime], RenewalRun]
) -> None:
    subscription = subscriber(trial_days=14)
    trial_end = START + dt.timedelta(days=14)
    run(trial_end)
    subscription.refresh_from_db()
    assert (
        subscription.trial_ends_at
        == subscription.next_renewal_at
        == trial_end + (dt.timedelta(days=6))
    )


def test_a_subscription_cancelled_while_held_ends_at_the_deferred_time(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    run: Callable[[dt.datetime], RenewalRun],
) -> None:
    run(RENEWAL)
    cancel_auto_renewal(subscription, actor=subscription.user, via="manage_page")
    assert run(DEFERRED) == RenewalRun(expired=1)
    assert [call[0] for call in gateway.calls] == ["hold"]  # never released nor renewed
    subscription.refresh_from_db()
    assert subscription.status == Status.EXPIRED
    assert AuditEvent.objects.get(kind="subscription_expired").data["status_before"] == "on_hold"


# --- held: lapse ---------------------------------------------------------------------------


def test_a_lapsing_pack_ends_the_subscription_and_tells_the_user(
    gateway: type[RecordingGateway], run: Callable[[dt.datetime], RenewalRun]
) -> None:
    subscription = subscriber(policy="cn-lapse")
    before = last_event_pk()

    assert run(RENEWAL) == RenewalRun(lapsed=1)

    assert gateway.calls == [
        ("hold", subscription.pk, RENEWAL),
        ("set_auto_renew", subscription.pk, False),
    ]
    subscription.refresh_from_db()
    assert subscription.status == Status.EXPIRED
    assert not subscription.auto_renew
    assert kinds(subscription, before) == [
        "renewal_gate",
        "renewal_held",
        "renewal_lapsed",
        "auto_renewal_cancelled",
        "subscription_expired",
        "gateway_synced",
    ]
    consent = subscription.consents.get()
    assert consent.revoked_via == "system"
    assert "renewal-reminder" in consent.revoke_reason
    (sms,) = [m for m in locmem.outbox if isinstance(m, SMSMessage)]
    assert "自动续费" in sms.body
    assert "2027年3月10日 09:00" in sms.body


@pytest.mark.parametrize("consent", ["revoked", "never given"])
def test_without_consent_the_renewal_always_lapses(
    gateway: type[RecordingGateway], run: Callable[[dt.datetime], RenewalRun], consent: str
) -> None:
    if consent == "revoked":
        subscription = subscriber()
        revoke_consent(subscription, at=START)
    else:
        with freeze_time(START):
            subscription = make_subscription(next_renewal_at=RENEWAL, gateway="recording")
            plan_notices(subscription)
    give(subscription)
    assert run(RENEWAL) == RenewalRun(lapsed=1)  # cn defers a missed notice; not this
    event = AuditEvent.objects.get(kind="auto_renewal_cancelled")
    assert event.data["reason"] == "no unrevoked consent to the current terms"
    subscription.refresh_from_db()
    assert subscription.status == Status.EXPIRED


# --- no auto-renewal -------------------------------------------------------------------------


def test_without_auto_renewal_the_subscription_expires_at_the_end_of_its_term(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    run: Callable[[dt.datetime], RenewalRun],
) -> None:
    cancel_auto_renewal(subscription, actor=subscription.user, via="manage_page")
    gateway.calls.clear()
    assert run(RENEWAL - dt.timedelta(seconds=1)) == RenewalRun()
    assert run(RENEWAL) == RenewalRun(expired=1)
    assert gateway.calls == []
    subscription.refresh_from_db()
    assert subscription.status == Status.EXPIRED
    event = AuditEvent.objects.get(kind="subscription_expired")
    assert event.data == {"ended_at": RENEWAL.isoformat(), "status_before": "active"}
    assert not AuditEvent.objects.filter(kind="renewal_gate").exists()
    assert run(RENEWAL + dt.timedelta(days=1)) == RenewalRun()


# --- failures and routing --------------------------------------------------------------------


def test_a_gateway_failure_rolls_the_renewal_back_for_the_next_run(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    run: Callable[[dt.datetime], RenewalRun],
    caplog: pytest.LogCaptureFixture,
) -> None:
    give(subscription)
    gateway.failing = GatewayError("processor unreachable")
    before = last_event_pk()
    assert run(RENEWAL) == RenewalRun(failed=1)
    assert "Renewal of subscription" in caplog.text
    subscription.refresh_from_db()
    assert subscription.next_renewal_at == RENEWAL
    assert kinds(subscription, before) == []

    gateway.failing = None
    assert run(RENEWAL + dt.timedelta(minutes=5)) == RenewalRun(renewed=1)


def test_the_renewal_goes_to_the_gateway_that_bills_the_subscription(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    settings: Settings,
    run: Callable[[dt.datetime], RenewalRun],
) -> None:
    give(subscription)
    settings.RENEWALS = {
        "GATEWAY": {"BACKEND": "renewals.gateways.local.LocalGateway"},
        "GATEWAYS": {"recording": {"BACKEND": "tests.renewals.fakes.RecordingGateway"}},
    }
    assert run(RENEWAL) == RenewalRun(renewed=1)
    assert gateway.calls == [("renew", subscription.pk, RENEWAL)]


def test_a_subscription_on_an_unknown_gateway_is_not_renewed(
    gateway: type[RecordingGateway],
    run: Callable[[dt.datetime], RenewalRun],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with freeze_time(START):
        subscription = subscriber()
        subscription.gateway = "gone"
        subscription.save()
    give(subscription)
    assert run(RENEWAL) == RenewalRun(failed=1)
    assert "No billing gateway named 'gone'" in caplog.text
    subscription.refresh_from_db()
    assert subscription.next_renewal_at == RENEWAL


class SlowGateway(RecordingGateway):
    """Takes its time to renew, so a second worker comes while the first holds the lock."""

    def renew(self, subscription: Subscription, renewal_at: dt.datetime) -> Period:
        time.sleep(0.2)
        return super().renew(subscription, renewal_at)


@pytest.mark.django_db(transaction=True)
def test_two_workers_renew_each_subscription_once(settings: Settings) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL.")
    gateway = SlowGateway.install(settings)
    subscriptions = [subscriber() for _ in range(3)]
    for subscription in subscriptions:
        give(subscription)

    runs = run_concurrently(lambda _: run_due_renewals(RENEWAL), threads=2)

    assert sum(run.renewed for run in runs) == 3
    assert sorted(gateway.calls) == sorted(("renew", s.pk, RENEWAL) for s in subscriptions)
    assert AuditEvent.objects.filter(kind="renewed").count() == 3
