"""Repairing what Stripe's webhooks did not bring (``manage.py renewals_reconcile --stripe``).

Two passes, both through the webhook's own processing (:mod:`.stripe_events`), so a repair
does exactly what the event would have done:

1. **Events.** The events of the types the webhook handles, created since a given time, that
   this database has not processed (never received, or failed) are applied, oldest first,
   as :func:`~renewals.services.stripe_events.receive_event` applies a delivered one.
2. **Subscriptions.** Every subscription Stripe bills is compared with this database's: one
   whose status, next renewal or auto-renewal differs is brought in line by the webhook's
   subscription sync (:func:`~.stripe_events.sync_subscription`), fed the object Stripe
   listed now; one that a checkout here created but
   never recorded is linked; one live here that Stripe no longer lists (it ended there) is
   fetched and synced. Stripe keeps events for 30 days; this pass repairs older gaps too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from ..exceptions import WebhookEventFailed
from ..gateways.stripe import StripeGateway, stripe_gateway, subscription_state
from ..models import LIVE_STATUSES, StripeEvent, Subscription
from .stripe_checkout import link_stripe_subscription
from .stripe_events import HANDLERS, receive_event, sync_subscription
from .stripe_import import started_here


@dataclass
class StripeRepairs:
    """What a reconcile run did."""

    events_applied: int = 0  # events Stripe sent that had not been processed here
    events_failed: int = 0  # kept with their error, for renewals_stripe_reprocess
    subscriptions_repaired: int = 0  # brought in line with Stripe's state
    subscriptions_linked: int = 0  # started here, Stripe id recorded now
    not_here: list[str] = field(default_factory=list)  # Stripe subscriptions unknown here


def reconcile_stripe(*, since: dt.datetime) -> StripeRepairs:
    """Apply the events since ``since`` that were not processed here, then bring every
    subscription in line with Stripe's; return what was repaired."""
    gateway = stripe_gateway()
    repairs = StripeRepairs()
    _apply_missed_events(gateway, since, repairs)
    _sync_subscriptions(gateway, repairs)
    return repairs


def _apply_missed_events(
    gateway: StripeGateway, since: dt.datetime, repairs: StripeRepairs
) -> None:
    missed: list[dict[str, Any]] = []
    cursor: str | None = None
    more = True
    while more:
        page, more = gateway.list_events(types=list(HANDLERS), since=since, starting_after=cursor)
        processed = set(
            StripeEvent.objects.filter(
                event_id__in=[event["id"] for event in page], processed_at__isnull=False
            ).values_list("event_id", flat=True)
        )
        missed += [event for event in page if event["id"] not in processed]
        cursor = page[-1]["id"] if page else None
    for payload in reversed(missed):  # Stripe lists newest first
        try:
            receive_event(payload)
        except WebhookEventFailed:
            repairs.events_failed += 1
        else:
            repairs.events_applied += 1


def _sync_subscriptions(gateway: StripeGateway, repairs: StripeRepairs) -> None:
    listed: set[str] = set()
    cursor: str | None = None
    more = True
    while more:
        page, more = gateway.list_subscriptions(starting_after=cursor)
        here = {
            subscription.gateway_subscription_id: subscription
            for subscription in Subscription.objects.filter(
                gateway=gateway.name, gateway_subscription_id__in=[obj["id"] for obj in page]
            )
        }
        for obj in page:
            listed.add(obj["id"])
            subscription = here.get(obj["id"])
            if subscription is not None:
                repairs.subscriptions_repaired += _sync(subscription, obj)
            elif (started := started_here(gateway, subscription_state(obj))) is not None:
                link_stripe_subscription(started, subscription_state(obj))
                repairs.subscriptions_linked += 1
            else:
                repairs.not_here.append(obj["id"])
        cursor = page[-1]["id"] if page else None
    gone = (
        Subscription.objects.filter(gateway=gateway.name, status__in=LIVE_STATUSES)
        .exclude(gateway_subscription_id="")
        .iterator()
    )
    for subscription in gone:
        if subscription.gateway_subscription_id not in listed:
            obj = gateway.retrieve_subscription(subscription.gateway_subscription_id)
            repairs.subscriptions_repaired += _sync(subscription, obj)


def _sync(subscription: Subscription, obj: Mapping[str, Any]) -> bool:
    """Feed Stripe's ``obj`` to the webhook's subscription sync if it differs from
    ``subscription``; whether that changed anything.

    A listed object carries no event time, so it is given the time of the state applied
    here (else its own creation): the sync then orders the two by the object itself and
    fetches the subscription from Stripe when that cannot tell, never comparing this
    server's clock with Stripe's.
    """
    state = subscription_state(obj)
    before = _mirrored(subscription)
    if before == (state.status, state.current_period_end, state.auto_renew):
        return False
    created = subscription.gateway_event_created or dt.datetime.fromtimestamp(
        obj["created"], dt.UTC
    )
    with transaction.atomic():  # applied, never stored: Stripe sent no event
        sync_subscription(obj, as_of=created, cause=f"reconcile:{state.id}")
    subscription.refresh_from_db()
    return _mirrored(subscription) != before


def _mirrored(subscription: Subscription) -> tuple[Any, ...]:
    return (subscription.status, subscription.next_renewal_at, subscription.auto_renew)
