"""Stripe's webhook events: stored once, applied in one transaction, kept with the outcome.

:func:`receive_event` takes an event the webhook view verified. Each event is applied in the
transaction that stores it as processed, so it takes effect exactly once: a replay of a
processed event changes nothing, and a failure rolls the whole event back, keeps it with its
error (the view answers 500, so Stripe sends it again) and leaves it for
:func:`reprocess_event` (``manage.py renewals_stripe_reprocess``).

What each type does:

``customer.subscription.created`` / ``.updated`` / ``.deleted``
    The subscription here follows Stripe's status, term (from the items, where the current API
    keeps it) and trial end, except across a renewal: once Stripe's term starts at or after
    the renewal due here, or while the gate holds a renewal, the renewal run decides (it asks
    the gate and takes the new term from the gateway). Auto-renewal switched off at Stripe
    (the customer portal sets ``cancel_at_period_end`` or ``cancel_at``, or ends the
    subscription) becomes :func:`~renewals.services.cancel_auto_renewal` with
    ``via="gateway"``, which does not call Stripe back. Switched on at Stripe while it is off
    here, it is switched off at Stripe again: only fresh consent here switches it on. An event
    created before the state already applied (``Subscription.gateway_event_created``) changes
    nothing; one created up to twice
    :data:`~renewals.services.cancellation.GATEWAY_CLOCK_SKEW` after it (a state sent from
    here is recorded that much early, as Stripe's clock may be behind ours) is ordered by the
    object's own term and ended state, and if that cannot tell, the subscription is fetched
    from Stripe.
``invoice.created`` (``billing_reason="subscription_cycle"``)
    The renewal gate decides on the renewal the draft invoice bills; if it refuses, the draft
    is held (``auto_advance=false``) through the renewal run's own hold, and the renewal run
    finalizes it when the rule pack's remedy allows or voids it when the renewal lapses.
``invoice.paid`` / ``invoice.payment_failed``
    Recorded in the subscription's audit chain; a failed payment moves the subscription to
    ``past_due`` when it can.

Any other type (``invoice.upcoming``, say, which has no invoice id), and any event about a
subscription this database does not know, is stored, marked processed and answered 200.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..exceptions import WebhookEventFailed
from ..gateways.stripe import (
    StripeGateway,
    StripeSubscriptionState,
    stripe_gateway,
    subscription_state,
)
from ..models import (
    ENDED_STATUSES,
    EventOutcome,
    RevokedVia,
    Status,
    StripeEvent,
    Subscription,
)
from .audit import record_event
from .cancellation import GATEWAY_CLOCK_SKEW, cancel_auto_renewal, sync_gateway
from .gate import renewal_gate
from .renewing import hold_refused_renewal
from .scheduling import plan_notices

logger = logging.getLogger("renewals.webhooks")

#: What the subscription sync reads: an event is applied without reading the rest of the row.
SYNCED = (
    "status",
    "auto_renew",
    "current_period_start",
    "next_renewal_at",
    "trial_ends_at",
    "held_renewal_at",
    "gateway_sync_pending",
    "gateway_event_created",
)
AutoRenewStep = Literal["cancel", "switch_off_at_stripe"] | None


def receive_event(payload: Mapping[str, Any]) -> StripeEvent:
    """Store the verified event ``payload`` (a dict of Stripe's event JSON) and apply it.

    Returns the stored event. An event stored before is not applied again, unless it failed
    then. Raises :class:`~renewals.exceptions.WebhookEventFailed` if applying it fails: the
    event is then kept, unprocessed, with the error.
    """
    event = _new_event(payload)
    inserted = False
    try:
        with transaction.atomic():
            # Stored first, as applied: the insert claims the event id, so a delivery of an
            # event stored before fails here with nothing done, and a failure further on
            # takes the row back with everything else.
            event.save()
            inserted = True
            outcome = _handle(event)
            if outcome != event.outcome:
                event.outcome = outcome
                event.save(update_fields=["outcome"])
    except Exception as exc:
        if inserted or not isinstance(exc, IntegrityError):
            return _failed(event.event_id, payload, exc, new=True)
        return _process_stored(event.event_id, payload, again=False)
    return event


def reprocess_event(event: StripeEvent) -> StripeEvent:
    """Apply a stored event again if it :func:`needs_processing`; else return it as it is,
    since it took effect already. Raises :class:`~renewals.exceptions.WebhookEventFailed` as
    :func:`receive_event` does."""
    return _process_stored(event.event_id, event.payload, again=True)


def needs_processing(event: StripeEvent) -> bool:
    """Whether applying the stored ``event`` again can make a difference: it failed, or it
    was about a subscription that was not here then (imported since, say)."""
    return event.processed_at is None or event.outcome == EventOutcome.UNKNOWN_SUBSCRIPTION


def failed_events() -> QuerySet[StripeEvent]:
    """Stored events not processed yet (their last attempt failed), oldest first."""
    return StripeEvent.objects.filter(processed_at__isnull=True).order_by("created", "pk")


def _process_stored(event_id: str, payload: Mapping[str, Any], *, again: bool) -> StripeEvent:
    """Apply the stored event ``event_id`` if it failed before (or, ``again``, if it
    :func:`needs_processing`), holding its row."""
    try:
        with transaction.atomic():
            event = StripeEvent.objects.select_for_update().get(event_id=event_id)
            if event.processed_at is not None and not (again and needs_processing(event)):
                return event
            event.outcome = _handle(event)
            event.processed_at = timezone.now()
            event.attempts += 1
            event.error = ""
            event.save(update_fields=["outcome", "processed_at", "attempts", "error"])
    except Exception as exc:
        return _failed(event_id, payload, exc, new=False)
    return event


def _new_event(payload: Mapping[str, Any]) -> StripeEvent:
    """An unsaved row for ``payload``, as processed now at the first attempt (applied, or
    ignored if no handler takes its type)."""
    obj = payload["data"]["object"]
    now = timezone.now()
    return StripeEvent(
        event_id=payload["id"],
        type=payload["type"],
        api_version=payload.get("api_version") or "",
        livemode=bool(payload.get("livemode")),
        object_id=obj.get("id") or "",
        created=_time(payload["created"]),
        payload=payload,
        received_at=now,
        processed_at=now,
        outcome=EventOutcome.APPLIED if payload["type"] in HANDLERS else EventOutcome.IGNORED,
        attempts=1,
    )


def _handle(event: StripeEvent) -> EventOutcome:
    handler = HANDLERS.get(event.type)
    return handler(event) if handler else EventOutcome.IGNORED


def _failed(event_id: str, payload: Mapping[str, Any], exc: Exception, *, new: bool) -> StripeEvent:
    """Keep the event with the error that stopped it (its transaction was rolled back), and
    raise WebhookEventFailed; or, for an event ``new`` to this delivery that another
    delivery of it applied meanwhile, return that."""
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().filter(event_id=event_id).first()
        if event is None:
            event = _new_event(payload)
            event.attempts = 0
        elif new and event.processed_at is not None:
            return event
        event.attempts += 1
        event.processed_at = None
        event.outcome = ""
        event.error = f"{type(exc).__name__}: {exc}"
        event.save()
    logger.error(
        "Stripe event %s (%s) failed (attempt %d); it is kept for a retry.",
        event.event_id,
        event.type,
        event.attempts,
        exc_info=exc,
    )
    raise WebhookEventFailed(event) from exc


# --- subscriptions ------------------------------------------------------------------------


def _sync_subscription(event: StripeEvent) -> EventOutcome:
    return sync_subscription(event.data_object, as_of=event.created, cause=event.event_id)


def sync_subscription(obj: Mapping[str, Any], *, as_of: dt.datetime, cause: str) -> EventOutcome:
    """Bring the subscription Stripe's object ``obj`` describes in line with it, as Stripe
    stated it at ``as_of``; ``cause`` (an event id, or what stands for one) is named in the
    audit events. Call inside a transaction: the subscription's row is locked."""
    state = subscription_state(obj)
    subscription = _locked(state.id, fields=SYNCED)
    if subscription is None:
        return EventOutcome.UNKNOWN_SUBSCRIPTION
    order = _order(subscription, as_of, state)
    if order < 0:
        return EventOutcome.STALE
    changes, step = _changes(subscription, state), _auto_renew_step(subscription, state)
    if order == 0 and (changes or step):
        # Created as the state applied was, as far as the clocks tell, and no clue which is
        # newer.
        state = subscription_state(stripe_gateway().retrieve_subscription(state.id))
        changes, step = _changes(subscription, state), _auto_renew_step(subscription, state)
    _save(subscription, changes, step, at=as_of)
    if changes:
        record_event(
            "gateway_updated",
            subscription=subscription,
            data={"event": cause, "changes": changes},
        )
    if step == "cancel":
        cancel_auto_renewal(
            subscription,
            actor=f"stripe:{cause}",
            via=RevokedVia.GATEWAY,
            reason="switched off at Stripe",
        )
    elif step == "switch_off_at_stripe":
        record_event(
            "gateway_auto_renew_refused",
            subscription=subscription,
            data={"event": cause, "reason": "auto-renewal is off here"},
        )
        pk = subscription.pk
        transaction.on_commit(lambda: sync_gateway(pk), robust=True)
    if changes:
        plan_notices(subscription)
    return EventOutcome.APPLIED


def _locked(stripe_id: str, *, fields: tuple[str, ...] = ()) -> Subscription | None:
    """The subscription billed as Stripe's ``stripe_id``, locked, or ``None``; with only
    ``fields`` read, if given (any other is read when first used)."""
    # Excluding the empty id repeats the unique index's condition, so SQLite uses it.
    billed = Subscription.objects.select_for_update().exclude(gateway_subscription_id="")
    if fields:
        billed = billed.only(*fields)
    try:
        return billed.get(gateway=StripeGateway.name, gateway_subscription_id=stripe_id)
    except Subscription.DoesNotExist:
        return None


def _order(subscription: Subscription, created: dt.datetime, state: StripeSubscriptionState) -> int:
    """-1 if the event is older than the state applied here, 1 if newer, 0 if no telling.

    A state sent from here is recorded :data:`GATEWAY_CLOCK_SKEW` before it was sent (by our
    clock), so Stripe's events up to twice that after it are told apart by the object only.
    """
    applied = subscription.gateway_event_created
    if applied is None or created > applied + 2 * GATEWAY_CLOCK_SKEW:
        return 1
    if created < applied:
        return -1
    start = subscription.current_period_start
    here = (int(start.timestamp()) if start else 0, int(subscription.status in ENDED_STATUSES))
    return (state.ordering > here) - (state.ordering < here)


def _changes(subscription: Subscription, state: StripeSubscriptionState) -> dict[str, list[Any]]:
    """``{field: [here, at Stripe]}`` for the mirrored fields the state changes."""
    wanted = _wanted(subscription, state)
    return {
        name: [getattr(subscription, name), value]
        for name, value in wanted.items()
        if getattr(subscription, name) != value
    }


def _wanted(subscription: Subscription, state: StripeSubscriptionState) -> dict[str, Any]:
    """The mirrored fields' values that follow from Stripe's ``state``."""
    if subscription.status in ENDED_STATUSES:
        return {}
    if state.status == Status.CANCELED:
        return {"status": _ended_status(subscription, state)}
    renewal_at = subscription.next_renewal_at
    past_renewal = (
        renewal_at is not None
        and state.current_period_start is not None
        and state.current_period_start >= renewal_at
    )
    if past_renewal or subscription.held_renewal_at is not None:
        return {}  # the renewal run's: the gate decides on that renewal first
    wanted: dict[str, Any] = {
        "current_period_start": state.current_period_start,
        "next_renewal_at": state.current_period_end,
    }
    if state.status == Status.TRIALING:
        wanted["trial_ends_at"] = state.trial_end
    if subscription.can_transition_to(state.status):
        wanted["status"] = state.status
    return wanted


def _ended_status(subscription: Subscription, state: StripeSubscriptionState) -> Status:
    """Expired if Stripe ended the subscription at the end of its term, else canceled."""
    renewal_at = subscription.next_renewal_at
    at_term_end = state.cancel_at_period_end or (
        state.cancel_at is not None and renewal_at is not None and state.cancel_at >= renewal_at
    )
    if at_term_end and subscription.can_transition_to(Status.EXPIRED):
        return Status.EXPIRED
    return Status.CANCELED


def _auto_renew_step(subscription: Subscription, state: StripeSubscriptionState) -> AutoRenewStep:
    """What Stripe's auto-renewal means here: ``cancel`` it (switched off at Stripe), or
    switch it off at Stripe again (switched on there, off here); ``None`` if they agree,
    while a change made here is on its way to Stripe, and before and after the
    subscription's life."""
    if (
        subscription.gateway_sync_pending
        or not subscription.is_live
        or state.status == Status.PENDING
    ):
        return None
    if subscription.auto_renew and not state.auto_renew:
        return "cancel"
    if not subscription.auto_renew and state.auto_renew:
        return "switch_off_at_stripe"
    return None


def _save(
    subscription: Subscription,
    changes: dict[str, list[Any]],
    step: AutoRenewStep,
    *,
    at: dt.datetime,
) -> None:
    """Save ``changes``, the event's time and, to switch auto-renewal off at Stripe, the
    sync flag, in one UPDATE."""
    values = {name: after for name, (_before, after) in changes.items()}
    values["gateway_event_created"] = at
    if step == "switch_off_at_stripe":
        values["gateway_sync_pending"] = True
    status = values.pop("status", None)
    if status is not None:
        subscription.transition_to(status, **values)
        return
    if changes or step:
        values["updated_at"] = timezone.now()
    for name, value in values.items():
        setattr(subscription, name, value)
    Subscription.objects.filter(pk=subscription.pk).update(**values)


# --- invoices -----------------------------------------------------------------------------


def _gate_renewal_invoice(event: StripeEvent) -> EventOutcome:
    """Ask the gate about the renewal a draft renewal invoice bills; hold it if refused."""
    invoice = event.data_object
    stripe_id = _invoice_subscription(invoice)
    renewal_draft = invoice.get("billing_reason") == "subscription_cycle" and (
        invoice.get("status") == "draft"
    )
    if stripe_id is None or not renewal_draft:
        return EventOutcome.IGNORED
    subscription = _locked(stripe_id)
    if subscription is None:
        return EventOutcome.UNKNOWN_SUBSCRIPTION
    renewal_at = _time(invoice["period_end"])
    decision = renewal_gate(subscription, renewal_at)
    if decision.allowed:
        return EventOutcome.APPLIED
    invoice_id = invoice["id"]
    if subscription.is_live and subscription.held_renewal_at is None:
        # The renewal run's hold, with the gateway holding this draft.
        subscription.held_invoice_id = invoice_id
        subscription.save(update_fields=["held_invoice_id", "updated_at"])
        hold_refused_renewal(subscription, renewal_at, decision)
    elif subscription.held_invoice_id != invoice_id:
        # Held here before Stripe drafted the invoice, or ended here: hold the draft now.
        stripe_gateway().hold_invoice(invoice_id, subscription=subscription)
    return EventOutcome.APPLIED


def _record_invoice(event: StripeEvent) -> EventOutcome:
    """Record a renewal payment's outcome; a failed one makes the subscription past due."""
    invoice = event.data_object
    stripe_id = _invoice_subscription(invoice)
    if stripe_id is None:
        return EventOutcome.IGNORED
    subscription = _locked(stripe_id)
    if subscription is None:
        return EventOutcome.UNKNOWN_SUBSCRIPTION
    paid = event.type == "invoice.paid"
    record_event(
        "invoice_paid" if paid else "invoice_payment_failed",
        subscription=subscription,
        data={
            "event": event.event_id,
            "invoice": invoice["id"],
            "billing_reason": invoice.get("billing_reason"),
            "amount": invoice["amount_paid" if paid else "amount_due"],
            "currency": invoice["currency"].upper(),
            "attempt_count": invoice.get("attempt_count"),
        },
    )
    applied = subscription.gateway_event_created
    newest = applied is None or event.created >= applied
    if not paid and newest and subscription.can_transition_to(Status.PAST_DUE):
        subscription.transition_to(Status.PAST_DUE)
    return EventOutcome.APPLIED


def _invoice_subscription(invoice: Mapping[str, Any]) -> str | None:
    """The Stripe subscription an invoice bills (``parent.subscription_details``)."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription: str | None = details.get("subscription")
    return subscription


HANDLERS: dict[str, Callable[[StripeEvent], EventOutcome]] = {
    "customer.subscription.created": _sync_subscription,
    "customer.subscription.updated": _sync_subscription,
    "customer.subscription.deleted": _sync_subscription,
    "invoice.created": _gate_renewal_invoice,
    "invoice.paid": _record_invoice,
    "invoice.payment_failed": _record_invoice,
}


def _time(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)
