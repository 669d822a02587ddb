"""Every consent, terms and notice row the renewal gate trusts is bound to the audit log by
its content: a change made in SQL, bypassing the services, is named by verification."""

from __future__ import annotations

import datetime as dt
import importlib
import json
from decimal import Decimal
from typing import Literal
from unittest import mock

import pytest
from django.apps import apps
from freezegun import freeze_time

from notifications.messages import Receipt
from notifications.models import Delivery
from notifications.status import apply_receipt
from renewals.models import (
    AuditChainHead,
    AuditEvent,
    Consent,
    RenewalNotice,
    RenewalTerms,
    Subscription,
)
from renewals.services import (
    AuditProblem,
    cancel_auto_renewal,
    notice_state,
    record_event,
    renewal_gate,
    verify_audit,
)
from renewals.services.audit import record_events
from renewals.services.batch_planning import plan_all
from renewals.services.sweep import send_due_notices

from .factories import (
    FIRST_RENEWAL,
    PHONE,
    make_subscription,
    make_user,
    subscribe_with_consent,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("reachable_users")]

MIGRATION = importlib.import_module("renewals.migrations.0008_audit_signatures_and_row_binding")


def problem() -> AuditProblem:
    report = verify_audit()
    assert report.problem is not None, "verification passed"
    return report.problem


def given(subscription: Subscription) -> RenewalNotice:
    """The subscription's reminder, sent by the sweep at its send time."""
    notice = subscription.notices.get()
    with freeze_time(notice.send_at):
        send_due_notices()
    notice.refresh_from_db()
    assert notice.sent_at is not None
    return notice


def test_untouched_evidence_verifies(subscription: Subscription) -> None:
    given(subscription)
    cancel_auto_renewal(subscription, actor=subscription.user, via="manage_page")

    report = verify_audit()

    assert report.ok, report.problem
    assert report.rows == 3  # the consent, its terms and the notice
    assert report.legacy_rows == 0


def test_a_consent_made_to_look_unticked_is_named(subscription: Subscription) -> None:
    consent = subscription.consents.get()
    Consent.objects.filter(pk=consent.pk).update(control_initially_unticked=False)

    found = problem()

    assert (found.model, found.pk) == ("renewals.consent", consent.pk)
    assert found.fields == ("control_initially_unticked",)
    granted = subscription.audit_events.get(kind="consent_granted")
    assert found.where == f"{granted.chain}#{granted.sequence}"
    assert "control_initially_unticked differs" in str(found)


def test_a_revocation_undone_in_sql_is_named(subscription: Subscription) -> None:
    cancel_auto_renewal(subscription, actor=subscription.user, via="one_click_link")
    consent = subscription.consents.get()
    Consent.objects.filter(pk=consent.pk).update(revoked_at=None)

    found = problem()

    assert (found.model, found.pk, found.fields) == (
        "renewals.consent",
        consent.pk,
        ("revoked_at",),
    )
    cancelled = subscription.audit_events.get(kind="auto_renewal_cancelled")
    assert found.where == f"{cancelled.chain}#{cancelled.sequence}"


def test_a_notice_moved_into_its_window_is_named(subscription: Subscription) -> None:
    notice = subscription.notices.get()  # planned, never sent
    RenewalNotice.objects.filter(pk=notice.pk).update(
        sent_at=notice.window_opens_at + dt.timedelta(hours=1)
    )
    assert RenewalNotice.objects.get(pk=notice.pk).given_in_window()  # the gate would believe it

    found = problem()

    assert (found.model, found.pk, found.fields) == (
        "renewals.renewalnotice",
        notice.pk,
        ("sent_at",),
    )


def test_the_time_a_sent_notice_was_given_is_bound(subscription: Subscription) -> None:
    notice = given(subscription)
    RenewalNotice.objects.filter(pk=notice.pk).update(sent_at=notice.window_opens_at)

    found = problem()

    assert (found.pk, found.fields) == (notice.pk, ("sent_at",))
    evidence = subscription.audit_events.get(kind="notice_evidence")
    assert found.where == f"{evidence.chain}#{evidence.sequence}"


def test_a_changed_price_is_named(subscription: Subscription) -> None:
    RenewalTerms.objects.filter(pk=subscription.terms_id).update(amount=Decimal("1.00"))

    found = problem()

    assert (found.model, found.pk, found.fields) == (
        "renewals.renewalterms",
        subscription.terms_id,
        ("amount",),
    )


def test_terms_no_consent_binds_still_match_their_content_hash() -> None:
    terms = make_subscription().terms  # no consent: bound nowhere
    RenewalTerms.objects.filter(pk=terms.pk).update(renewal_wording="Renews weekly.")
    found = problem()
    assert (found.model, found.pk) == ("renewals.renewalterms", terms.pk)
    assert "content hash" in found.reason


def forge_consent(subscription: Subscription) -> Consent:
    """A consent to the subscription's terms inserted past the services, as SQL would."""
    return Consent.objects.create(
        subscription=subscription,
        user=subscription.user,
        terms=subscription.terms,
        terms_hash=subscription.terms.content_hash,
        policy="cn",
        granted_at=FIRST_RENEWAL,
        channel="web",
        form_id="forged",
        control_initially_unticked=True,
    )


def test_a_consent_written_outside_the_services_is_reported(subscription: Subscription) -> None:
    forged = forge_consent(subscription)
    found = problem()
    assert (found.model, found.pk) == ("renewals.consent", forged.pk)
    assert "no audit event binds it" in found.reason


def test_a_consent_of_a_subscription_without_a_chain_is_reported() -> None:
    subscription = make_subscription()
    forged = forge_consent(subscription)
    assert (problem().model, problem().pk) == ("renewals.consent", forged.pk)


def test_a_deleted_notice_is_reported(subscription: Subscription) -> None:
    notice = subscription.notices.get()
    RenewalNotice.objects.filter(pk=notice.pk).delete()
    found = problem()
    assert (found.model, found.pk) == ("renewals.renewalnotice", notice.pk)
    assert "gone" in found.reason


def test_personal_data_is_bound_by_a_digest_only(subscription: Subscription) -> None:
    consent = subscription.consents.get()
    assert consent.ip_address
    chain = json.dumps(list(AuditEvent.objects.values_list("data", flat=True)))
    assert consent.ip_address not in chain
    assert consent.user_agent not in chain

    Consent.objects.filter(pk=consent.pk).update(ip_address="10.9.9.9")

    assert problem().fields == ("ip_address, user_agent",)


def test_a_receipt_that_takes_the_evidence_back_is_bound_too(subscription: Subscription) -> None:
    notice = given(subscription)
    sms = Delivery.objects.get(channel="sms")
    later = notice.send_at + dt.timedelta(minutes=5)
    with freeze_time(later):
        apply_receipt(
            backend_alias=sms.backend_alias,
            receipt=_receipt(sms.provider_message_id, "undelivered", later),
        )
    notice.refresh_from_db()
    assert notice.sent_at is None

    assert verify_audit().ok
    assert subscription.audit_events.filter(kind="notice_evidence").count() == 2
    # Putting the evidence back in SQL is named.
    RenewalNotice.objects.filter(pk=notice.pk).update(sent_at=notice.send_at)
    assert problem().fields == ("sent_at",)


def _receipt(
    message_id: str, status: Literal["sent", "delivered", "undelivered", "failed"], at: dt.datetime
) -> Receipt:
    return Receipt(provider_message_id=message_id, status=status, at=at)


def test_the_sweep_binds_a_batch_with_one_append_of_audit_events() -> None:
    subscriptions = [subscribe_with_consent(make_user(first_name=PHONE)) for _ in range(3)]
    send_at = max(s.notices.get().send_at for s in subscriptions)

    with (
        mock.patch.object(notice_state, "record_events", wraps=record_events) as spy,
        freeze_time(send_at),
    ):
        assert send_due_notices().sent == 3

    ((events,), _kwargs) = spy.call_args
    assert spy.call_count == 1
    assert sorted(event.subscription_id for event in events) == [s.pk for s in subscriptions]
    for subscription in subscriptions:
        (event,) = subscription.audit_events.filter(kind="notice_evidence")
        (bound,) = event.data["bound_rows"]
        assert bound["pk"] == subscription.notices.get().pk
    assert verify_audit().ok


def test_batch_planning_binds_the_windows_it_plans() -> None:
    subscriptions = [make_subscription() for _ in range(3)]
    plan_all(batch_size=2)
    assert verify_audit().ok
    notice = subscriptions[1].notices.get()

    RenewalNotice.objects.filter(pk=notice.pk).update(
        window_closes_at=notice.window_closes_at + dt.timedelta(days=3)
    )

    found = problem()
    assert (found.pk, found.fields) == (notice.pk, ("window_closes_at",))


def test_a_notice_plan_all_bound_is_checked_against_its_newest_binding() -> None:
    subscription = make_subscription(user=make_user(first_name=PHONE))
    plan_all()  # binds the notice on the system chain
    notice = subscription.notices.get()
    batch = AuditEvent.objects.get(kind="notices_planned_batch")
    assert verify_audit().ok

    with freeze_time(notice.send_at):
        send_due_notices()  # binds it again, later, on the subscription's chain
    given = subscription.audit_events.get(kind="notice_evidence")
    assert given.pk > batch.pk
    assert verify_audit().ok
    RenewalNotice.objects.filter(pk=notice.pk).update(sent_at=notice.window_opens_at)
    found = problem()
    assert (found.pk, found.where, found.fields) == (
        notice.pk,
        f"{given.chain}#{given.sequence}",
        ("sent_at",),
    )


def test_a_deleted_notice_plan_all_bound_is_reported() -> None:
    make_subscription()
    plan_all()
    notice = RenewalNotice.objects.get()
    RenewalNotice.objects.filter(pk=notice.pk).delete()
    found = problem()
    assert (found.model, found.pk, found.where) == ("renewals.renewalnotice", notice.pk, "system#1")
    assert "gone" in found.reason


def test_rows_from_before_row_binding_are_counted_not_checked(subscription: Subscription) -> None:
    consent = subscription.consents.get()
    # A database from before row binding: its events bind nothing, it has no head records.
    _forget_bindings()
    MIGRATION.record_chain_heads(apps, None)
    assert problem().pk == consent.pk  # without the migration's record of the start

    AuditChainHead.objects.all().delete()
    MIGRATION.record_row_binding_start(apps, None)
    MIGRATION.record_chain_heads(apps, None)

    report = verify_audit()
    assert report.ok, report.problem
    assert report.legacy_rows == 2  # the consent and the notice
    # A row written after the upgrade must be bound.
    later = Consent.objects.create(
        **{
            name: getattr(consent, name)
            for name in ("subscription", "user", "terms", "terms_hash", "policy", "channel")
        },
        granted_at=FIRST_RENEWAL,
        form_id="later",
        control_initially_unticked=True,
    )
    assert problem().pk == later.pk


def _forget_bindings() -> None:
    """Rewrite the log as an older version of the package wrote it: no bound rows (and no
    head records, which the migration then makes)."""
    AuditChainHead.objects.all().delete()
    events = list(AuditEvent.objects.order_by("chain", "sequence"))
    AuditEvent.objects.all().delete()
    previous: dict[str, str] = {}
    for event in events:
        event.pk = None
        event._state.adding = True
        event.data = {k: v for k, v in event.data.items() if k != "bound_rows"}
        event.prev_hash = previous.get(event.chain, "0" * 64)
        event.mac = ""
        event.save()
        previous[event.chain] = event.hash


def test_an_event_binds_only_its_own_subscriptions_rows(subscription: Subscription) -> None:
    other = subscribe_with_consent()
    with pytest.raises(ValueError, match="another subscription"):
        record_event("note", subscription=subscription, evidence=[other.consents.get()])
    with pytest.raises(ValueError, match="bound_rows"):
        record_event("note", subscription=subscription, data={"bound_rows": []})


def test_the_gate_records_the_evidence_it_relied_on(subscription: Subscription) -> None:
    notice = given(subscription)
    consent = subscription.consents.get()
    deliveries = list(Delivery.objects.order_by("pk").values_list("pk", "channel"))

    with freeze_time(notice.renewal_at):
        assert renewal_gate(subscription, notice.renewal_at).allowed

    evidence = subscription.audit_events.get(kind="renewal_gate").data["evidence"]
    assert evidence["consents"] == [
        {"id": consent.pk, "terms_hash": consent.terms_hash, "sha256": _bound_sha(consent)}
    ]
    assert (
        evidence["terms_hash"] == evidence["renewal_terms_hash"] == subscription.terms.content_hash
    )
    (relied,) = evidence["notices"]
    assert relied["id"] == notice.pk
    assert notice.sent_at is not None
    assert relied["given_at"] == notice.sent_at.isoformat()
    assert [(d["id"], d["channel"]) for d in relied["deliveries"]] == deliveries
    assert {d["status"] for d in relied["deliveries"]} == {"sent"}


def _bound_sha(consent: Consent) -> str:
    granted = consent.subscription.audit_events.get(kind="consent_granted")
    (binding,) = [b for b in granted.data["bound_rows"] if b["model"] == "renewals.consent"]
    sha: str = binding["sha256"]
    return sha
