"""Switching auto-renewal off is idempotent, recorded, and reaches the gateway."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections
from freezegun import freeze_time

from renewals.exceptions import ConsentMissing, GatewayError, IllegalTransition
from renewals.models import AuditEvent, NoticeStatus, Status
from renewals.services import (
    cancel_auto_renewal,
    plan_notices,
    resume_auto_renewal,
    subscribe,
    sync_gateway,
    sync_pending_gateways,
)

from .factories import make_evidence, make_subscription, make_terms, make_user

pytestmark = pytest.mark.django_db


class CrashingGateway(Exception):
    """Not a GatewayError: a bug or an unexpected reply in the gateway code."""


class RecordingGateway:
    """A gateway that remembers calls and can be told to fail."""

    name = "recording"
    calls: list[tuple[int, bool]] = []
    failing = False

    def __init__(self, **options):
        pass

    def set_auto_renew(self, subscription, enabled):
        if RecordingGateway.failing:
            raise RecordingGateway.failing
        RecordingGateway.calls.append((subscription.pk, enabled))

    def hold_renewal(self, subscription, renewal_at):
        pass

    def release_renewal(self, subscription, renewal_at):
        pass

    def check(self):
        return []


@pytest.fixture
def gateway(settings):
    RecordingGateway.calls = []
    RecordingGateway.failing = False
    settings.RENEWALS = {"GATEWAY": {"BACKEND": f"{__name__}.RecordingGateway"}}
    return RecordingGateway


@pytest.fixture
def subscription():
    terms = make_terms()
    with freeze_time("2027-02-01 02:00:00+00:00"):
        return subscribe(make_user(), terms, make_evidence(terms), time_zone="Asia/Shanghai")


@freeze_time("2027-02-03 02:00:00+00:00")
def test_cancelling_twice_has_one_effect(subscription, gateway, django_capture_on_commit_callbacks):
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
    assert gateway.calls == [(subscription.pk, False)]
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


def test_unknown_route_is_refused(subscription, gateway):
    with pytest.raises(ValueError, match="carrier pigeon"):
        cancel_auto_renewal(subscription, actor=None, via="carrier pigeon")
    subscription.refresh_from_db()
    assert subscription.auto_renew


def test_a_failed_gateway_call_is_repaired_by_the_next_sync(
    subscription, gateway, django_capture_on_commit_callbacks, capsys
):
    gateway.failing = GatewayError("processor unreachable")
    with django_capture_on_commit_callbacks(execute=True):
        cancel_auto_renewal(subscription, actor=None, via="system")
    subscription.refresh_from_db()
    assert subscription.gateway_sync_pending
    assert gateway.calls == []

    gateway.failing = False
    call_command("renewals_reconcile")
    assert "1 of 1 pending subscriptions synced" in capsys.readouterr().out
    subscription.refresh_from_db()
    assert not subscription.gateway_sync_pending
    assert gateway.calls == [(subscription.pk, False)]
    assert sync_pending_gateways() == 0


@freeze_time("2027-02-03 02:00:00+00:00")
def test_resume_needs_fresh_consent(subscription, gateway, django_capture_on_commit_callbacks):
    cancel_auto_renewal(subscription, actor=None, via="system")
    with pytest.raises(ConsentMissing):
        resume_auto_renewal(subscription, evidence=None, actor=subscription.user)
    subscription.refresh_from_db()
    assert not subscription.auto_renew

    with django_capture_on_commit_callbacks(execute=True):
        resume_auto_renewal(
            subscription, evidence=make_evidence(subscription.terms), actor=subscription.user
        )
    subscription.refresh_from_db()
    assert subscription.auto_renew
    assert subscription.consents.filter(revoked_at__isnull=True).count() == 1
    assert subscription.notices.filter(status=NoticeStatus.PLANNED).count() == 1
    assert gateway.calls[-1] == (subscription.pk, True)


def test_an_ended_subscription_cannot_resume(gateway):
    subscription = make_subscription(status=Status.EXPIRED, auto_renew=False)
    with pytest.raises(IllegalTransition):
        resume_auto_renewal(subscription, evidence=make_evidence(subscription.terms), actor=None)


def test_cancel_withdraws_only_pending_notices(gateway):
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
    subscription, gateway, django_capture_on_commit_callbacks, caplog
):
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

    def set_auto_renew(self, subscription, enabled):
        if not SlowGateway.first_call_started.is_set():
            SlowGateway.first_call_started.set()
            SlowGateway.go_on.wait(timeout=10)
        super().set_auto_renew(subscription, enabled)


@pytest.mark.django_db(transaction=True)
def test_a_slow_sync_cannot_land_after_a_newer_one(settings):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL.")
    RecordingGateway.calls, RecordingGateway.failing = [], False
    SlowGateway.first_call_started.clear()
    SlowGateway.go_on.clear()
    settings.RENEWALS = {"GATEWAY": {"BACKEND": f"{__name__}.SlowGateway"}}
    subscription = make_subscription(auto_renew=True, gateway_sync_pending=True)

    slow = threading.Thread(target=lambda: (sync_gateway(subscription.pk), connections.close_all()))
    slow.start()  # tells the gateway "on", slowly
    assert SlowGateway.first_call_started.wait(timeout=10)
    cancel = threading.Thread(
        target=lambda: (
            cancel_auto_renewal(subscription, actor=None, via="system"),
            connections.close_all(),
        )
    )
    cancel.start()  # waits for the slow sync's row lock, then syncs "off" after commit
    cancel.join(timeout=1)  # without the lock it would finish here, before the slow call
    SlowGateway.go_on.set()
    slow.join()
    cancel.join()

    assert RecordingGateway.calls == [(subscription.pk, True), (subscription.pk, False)]
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    assert not subscription.gateway_sync_pending
