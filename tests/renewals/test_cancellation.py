"""Switching auto-renewal off is idempotent, recorded, and reaches the gateway."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection, connections
from freezegun import freeze_time
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from renewals.exceptions import (
    ConsentMissing,
    GatewayError,
    IllegalTransition,
    NotAllowed,
    StaleTermsHash,
)
from renewals.gateways import gateway_for, gateway_named, get_gateway
from renewals.models import AuditEvent, NoticeStatus, Status, Subscription
from renewals.services import (
    cancel_auto_renewal,
    plan_notices,
    resume_auto_renewal,
    sync_gateway,
    sync_pending_gateways,
)
from renewals.signals import auto_renewal_changed

from .factories import (
    SUBSCRIBED_AT,
    make_evidence,
    make_subscription,
    make_terms,
    make_user,
)
from .fakes import RecordingGateway, rolled_back

pytestmark = pytest.mark.django_db


class CrashingGateway(Exception):
    """Not a GatewayError: a bug or an unexpected reply in the gateway code."""


@pytest.fixture(autouse=True)
def gateway(settings: Settings) -> type[RecordingGateway]:
    """Every subscription here is billed by the recording gateway, installed before any is
    started."""
    return RecordingGateway.install(settings)


#: Two days into the shared subscription's first term.
CANCELLED_AT = SUBSCRIBED_AT + dt.timedelta(days=2)


@freeze_time(CANCELLED_AT)
def test_cancelling_twice_has_one_effect(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    user = subscription.user
    with django_capture_on_commit_callbacks(execute=True):
        first = cancel_auto_renewal(subscription, actor=user, via="one_click_link", reason="pricey")
    events = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        second = cancel_auto_renewal(subscription, actor=user, via="manage_page")

    assert first.changed
    assert not second.changed
    assert callbacks == []
    assert AuditEvent.objects.count() == events
    assert gateway.calls == [("set_auto_renew", subscription.pk, False)]
    consent = subscription.consents.get()
    assert consent.revoked_via == "one_click_link"
    assert consent.revoked_by == user
    assert consent.revoke_reason == "pricey"
    assert set(subscription.notices.values_list("status", flat=True)) == {NoticeStatus.WITHDRAWN}
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    assert not subscription.gateway_sync_pending
    assert subscription.status == Status.ACTIVE  # the paid term runs out
    assert first.service_ends_at == subscription.next_renewal_at
    event = AuditEvent.objects.get(kind="auto_renewal_cancelled")
    assert event.actor == f"user:{user.pk}"
    assert event.data["via"] == "one_click_link"


def test_unknown_route_is_refused(
    subscription: Subscription, gateway: type[RecordingGateway]
) -> None:
    with pytest.raises(ValueError, match="carrier pigeon"):
        cancel_auto_renewal(subscription, actor=None, via="carrier pigeon")
    subscription.refresh_from_db()
    assert subscription.auto_renew


def test_a_failed_gateway_call_is_repaired_by_the_next_sync(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway.failing = GatewayError("processor unreachable")
    with django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(subscription, actor=None, via="system")
    assert Subscription.objects.get(pk=subscription.pk).gateway_sync_pending
    assert gateway.calls == []

    gateway.failing = None
    call_command("renewals_reconcile")
    assert "1 of 1 pending subscriptions synced" in capsys.readouterr().out
    subscription.refresh_from_db()
    assert not subscription.gateway_sync_pending
    assert gateway.calls == [("set_auto_renew", subscription.pk, False)]
    assert sync_pending_gateways() == 0


@freeze_time(CANCELLED_AT)
def test_resume_needs_fresh_consent(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    cancel_auto_renewal(subscription, actor=None, via="system")
    with pytest.raises(ConsentMissing):
        resume_auto_renewal(subscription, evidence=None, actor=subscription.user)
    assert not Subscription.objects.get(pk=subscription.pk).auto_renew

    with django_capture_on_commit_callbacks(execute=True):
        resume_auto_renewal(
            subscription, evidence=make_evidence(subscription.terms), actor=subscription.user
        )
    subscription.refresh_from_db()
    assert subscription.auto_renew
    assert subscription.consents.filter(revoked_at__isnull=True).count() == 1
    assert subscription.notices.filter(status=NoticeStatus.PLANNED).count() == 1
    assert gateway.calls[-1] == ("set_auto_renew", subscription.pk, True)


@freeze_time(CANCELLED_AT)
def test_resume_takes_consent_to_the_terms_the_next_renewal_charges(
    subscription: Subscription, gateway: type[RecordingGateway]
) -> None:
    cancel_auto_renewal(subscription, actor=subscription.user, via="manage_page")
    dearer = make_terms(amount="30.00")
    subscription.upcoming_terms = dearer
    subscription.save(update_fields=["upcoming_terms"])

    with pytest.raises(StaleTermsHash) as refused:
        resume_auto_renewal(
            subscription, evidence=make_evidence(subscription.terms), actor=subscription.user
        )
    assert refused.value.current == dearer.content_hash
    subscription.refresh_from_db()
    assert not subscription.auto_renew

    resume_auto_renewal(subscription, evidence=make_evidence(dearer), actor=subscription.user)
    consent = subscription.consents.get(revoked_at__isnull=True)
    assert consent.terms == dearer
    assert consent.terms_hash == dearer.content_hash


@freeze_time(CANCELLED_AT)
def test_another_user_cannot_resume_a_subscription(
    subscription: Subscription, gateway: type[RecordingGateway]
) -> None:
    cancel_auto_renewal(subscription, actor=subscription.user, via="manage_page")
    events = AuditEvent.objects.count()
    with pytest.raises(NotAllowed):
        resume_auto_renewal(
            subscription, evidence=make_evidence(subscription.terms), actor=make_user()
        )
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    assert not subscription.consents.filter(revoked_at__isnull=True).exists()
    assert AuditEvent.objects.count() == events


def test_another_user_cannot_cancel_a_subscription(
    subscription: Subscription, gateway: type[RecordingGateway]
) -> None:
    with pytest.raises(NotAllowed):
        cancel_auto_renewal(subscription, actor=make_user(), via="manage_page")
    subscription.refresh_from_db()
    assert subscription.auto_renew
    staff = make_user(is_staff=True)
    assert cancel_auto_renewal(subscription, actor=staff, via="admin").changed


def test_an_ended_subscription_cannot_resume(gateway: type[RecordingGateway]) -> None:
    subscription = make_subscription(status=Status.EXPIRED, auto_renew=False)
    with pytest.raises(IllegalTransition):
        resume_auto_renewal(subscription, evidence=make_evidence(subscription.terms), actor=None)


def test_cancel_withdraws_only_pending_notices(gateway: type[RecordingGateway]) -> None:
    subscription = make_subscription(
        next_renewal_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    )
    (notice,) = plan_notices(subscription)
    notice.status = NoticeStatus.SENT
    notice.save()
    cancel_auto_renewal(subscription, actor=None, via="system")
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENT


def test_an_unexpected_gateway_error_does_not_undo_or_break_the_cancellation(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway.failing = CrashingGateway("KeyError: 'status'")
    with django_capture_on_commit_callbacks(execute=True):
        result = cancel_auto_renewal(subscription, actor=None, via="system")
    assert result.changed
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    assert subscription.gateway_sync_pending
    assert "Gateway sync failed" in caplog.text


class SlowGateway(RecordingGateway):
    """Blocks its first call until told to go on, like a slow processor."""

    first_call_started = threading.Event()
    go_on = threading.Event()

    def set_auto_renew(self, subscription: Subscription, enabled: bool) -> None:
        if not SlowGateway.first_call_started.is_set():
            SlowGateway.first_call_started.set()
            SlowGateway.go_on.wait(timeout=10)
        super().set_auto_renew(subscription, enabled)


@pytest.mark.django_db(transaction=True)
def test_a_slow_sync_cannot_land_after_a_newer_one(settings: Settings) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL.")
    SlowGateway.install(settings)
    SlowGateway.first_call_started.clear()
    SlowGateway.go_on.clear()
    subscription = make_subscription(
        auto_renew=True, gateway_sync_pending=True, gateway=SlowGateway.name
    )

    def sync_slowly() -> None:
        sync_gateway(subscription.pk)
        connections.close_all()

    def cancel_meanwhile() -> None:
        cancel_auto_renewal(subscription, actor=None, via="system")
        connections.close_all()

    slow = threading.Thread(target=sync_slowly)
    slow.start()  # tells the gateway "on", slowly
    assert SlowGateway.first_call_started.wait(timeout=10)
    cancel = threading.Thread(target=cancel_meanwhile)
    cancel.start()  # waits for the slow sync's row lock, then syncs "off" after commit
    cancel.join(timeout=1)  # without the lock it would finish here, before the slow call
    SlowGateway.go_on.set()
    slow.join()
    cancel.join()

    assert RecordingGateway.calls == [
        ("set_auto_renew", subscription.pk, True),
        ("set_auto_renew", subscription.pk, False),
    ]
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    assert not subscription.gateway_sync_pending


def test_subscribe_records_the_gateway_that_bills_it(subscription: Subscription) -> None:
    assert subscription.gateway == "recording"
    assert AuditEvent.objects.get(kind="subscribed").data["gateway"] == "recording"


def test_the_gateway_and_the_receivers_are_told_after_the_commit(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    changes = []
    auto_renewal_changed.connect(lambda **kw: changes.append(kw), weak=False, dispatch_uid="t")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            cancel_auto_renewal(subscription, actor=None, via="system")
            assert changes == []
            assert gateway.calls == []
    finally:
        auto_renewal_changed.disconnect(dispatch_uid="t")
    assert [(c["enabled"], c["via"]) for c in changes] == [(False, "system")]
    assert gateway.calls == [("set_auto_renew", subscription.pk, False)]


def test_a_cancel_rolled_back_tells_no_one(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    changes = []
    auto_renewal_changed.connect(lambda **kw: changes.append(kw), weak=False, dispatch_uid="t")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            rolled_back(lambda: cancel_auto_renewal(subscription, actor=None, via="system"))
    finally:
        auto_renewal_changed.disconnect(dispatch_uid="t")
    assert changes == []
    assert gateway.calls == []
    subscription.refresh_from_db()
    assert subscription.auto_renew


def test_a_failing_receiver_does_not_undo_the_cancel_nor_stop_the_gateway(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(**kwargs: object) -> None:
        raise ValueError("a receiver's bug")

    auto_renewal_changed.connect(broken, weak=False, dispatch_uid="t")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = cancel_auto_renewal(subscription, actor=None, via="system")
    finally:
        auto_renewal_changed.disconnect(dispatch_uid="t")
    assert result.changed
    assert gateway.calls == [("set_auto_renew", subscription.pk, False)]
    assert "a receiver's bug" in caplog.text


def test_the_sync_goes_to_the_gateway_that_bills_the_subscription(
    subscription: Subscription,
    gateway: type[RecordingGateway],
    settings: Settings,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    # New subscriptions now go to LocalGateway; this one stays with the "recording" processor.
    settings.RENEWALS = {
        "GATEWAY": {"BACKEND": "renewals.gateways.local.LocalGateway"},
        "GATEWAYS": {"recording": {"BACKEND": "tests.renewals.fakes.RecordingGateway"}},
    }
    with django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(subscription, actor=None, via="system")
    assert gateway.calls == [("set_auto_renew", subscription.pk, False)]
    subscription.refresh_from_db()
    assert not subscription.gateway_sync_pending
    assert gateway_for(subscription) is gateway_named("recording")
    assert gateway_for(make_subscription(gateway="local")) is get_gateway()


def test_an_unknown_gateway_leaves_the_sync_pending(
    gateway: type[RecordingGateway],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
    caplog: pytest.LogCaptureFixture,
) -> None:
    subscription = make_subscription(gateway="gone")
    with django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(subscription, actor=None, via="system")
    assert Subscription.objects.get(pk=subscription.pk).gateway_sync_pending
    assert gateway.calls == []
    assert "No billing gateway named 'gone' is configured" in caplog.text
    with pytest.raises(GatewayError, match=r"RENEWALS\['GATEWAYS'\]\['gone'\]"):
        gateway_for(subscription)


def test_a_gateways_entry_must_be_keyed_by_its_name(settings: Settings) -> None:
    settings.RENEWALS = {
        "GATEWAYS": {"stripe": {"BACKEND": "tests.renewals.fakes.RecordingGateway"}}
    }
    with pytest.raises(ImproperlyConfigured, match="named 'recording'; the key must be"):
        gateway_named("stripe")
