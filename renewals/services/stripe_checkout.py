"""Starting a subscription at Stripe once the user's consent is on record.

The path from the consent form: :func:`~renewals.services.subscribe` records the consent and
starts the subscription here (``gateway="stripe"``); :func:`start_stripe_subscription` then
creates it at Stripe, charging the payment method the app collected with Stripe's own
elements, and keeps the ids and the term Stripe bills.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.db import transaction

from ..exceptions import ConsentMissing, GatewayRefused, IllegalTransition, PriceMismatch
from ..gateways import gateway_for
from ..gateways.stripe import (
    METADATA_SUBSCRIPTION,
    StripeGateway,
    StripeSubscriptionState,
    consent_metadata,
    price_terms,
    subscription_state,
)
from ..models import Consent, RenewalTerms, Status, Subscription
from ..models.terms import format_amount
from .audit import record_event
from .scheduling import plan_notices

logger = logging.getLogger("renewals")


def start_stripe_subscription(
    subscription: Subscription, *, customer: str | None = None, payment_method: str | None = None
) -> Subscription:
    """Create the Stripe subscription of ``subscription``, which :func:`subscribe` started
    with the user's consent, and return it with its Stripe ids and Stripe's term.

    The Stripe subscription bills ``terms.stripe_price_id`` (checked first to charge what the
    terms say, else :class:`~renewals.exceptions.PriceMismatch`), for ``customer`` (default:
    the subscription's, else a new customer with the user's email), from ``payment_method``
    (default: the customer's), with the free trial the subscription has and its
    auto-renewal, and carries the consent's id and terms hash as metadata. The first payment
    must succeed at once (``payment_behavior="error_if_incomplete"``).

    Safe to call again: a subscription already at Stripe is returned as it is, and a call
    repeated after :class:`~renewals.exceptions.GatewayUnavailable` sends the same
    idempotency keys, so Stripe creates nothing twice. When Stripe refuses
    (:class:`~renewals.exceptions.GatewayRefused`: a declined card, say) or the price does
    not match, the subscription ends here without having started (no trial used) and the
    error is raised.
    """
    gateway = gateway_for(subscription)
    if not isinstance(gateway, StripeGateway):
        raise TypeError(f"Subscription {subscription.pk} is billed by {subscription.gateway!r}.")
    subscription.refresh_from_db()
    if subscription.gateway_subscription_id:
        return subscription
    if not subscription.is_live:
        raise IllegalTransition(subscription.status, "started at Stripe")
    terms = subscription.terms
    consent = (
        Consent.objects.filter(
            subscription=subscription, revoked_at__isnull=True, terms_hash=terms.content_hash
        )
        .order_by("-pk")
        .first()
    )
    if consent is None:
        raise ConsentMissing()
    if not terms.stripe_price_id:
        raise ValueError(f"Terms #{terms.pk} have no stripe_price_id to bill at Stripe.")
    try:
        ensure_price_matches(terms, gateway.retrieve_price(terms.stripe_price_id))
        customer = (
            customer
            or subscription.gateway_customer_id
            or gateway.create_customer(subscription, email=subscription.user.email)
        )
        params = {
            "customer": customer,
            "items": [{"price": terms.stripe_price_id}],
            "cancel_at_period_end": not subscription.auto_renew,
            "payment_behavior": "error_if_incomplete",
            "metadata": {METADATA_SUBSCRIPTION: str(subscription.pk), **consent_metadata(consent)},
        }
        if payment_method:
            params["default_payment_method"] = payment_method
        if subscription.trial_ends_at:
            params["trial_end"] = int(subscription.trial_ends_at.timestamp())
        created = gateway.create_subscription(subscription, params)
    except (GatewayRefused, PriceMismatch) as refused:
        _abandon(subscription, refused)
        raise
    return link_stripe_subscription(subscription, subscription_state(created))


def ensure_price_matches(terms: RenewalTerms, price: Mapping[str, Any]) -> None:
    """Raise :class:`~renewals.exceptions.PriceMismatch` unless the Stripe ``price`` charges
    the terms' amount, in their currency, for their term."""
    fixed = price_terms(price)

    def shown(field: str, value: Any) -> Any:
        return format_amount(value, terms.currency) if field == "amount" else value

    differences = [
        f"{field} is {shown(field, fixed[field])} at Stripe, "
        f"{shown(field, getattr(terms, field))} in terms #{terms.pk}"
        for field in ("amount", "currency", "interval", "interval_count")
        if fixed[field] != getattr(terms, field)
    ]
    if differences:
        raise PriceMismatch(str(price["id"]), differences)


def link_stripe_subscription(
    subscription: Subscription, state: StripeSubscriptionState
) -> Subscription:
    """Record the Stripe subscription ``state`` describes as ``subscription``'s, with the
    term Stripe bills (its next renewal, trial end), and plan that renewal's notices."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        subscription.gateway_customer_id = state.customer
        subscription.gateway_subscription_id = state.id
        subscription.current_period_start = state.current_period_start
        subscription.next_renewal_at = state.current_period_end
        if state.status == Status.TRIALING:
            subscription.trial_ends_at = state.trial_end
        subscription.save(
            update_fields=[
                "gateway_customer_id",
                "gateway_subscription_id",
                "current_period_start",
                "next_renewal_at",
                "trial_ends_at",
                "updated_at",
            ]
        )
        record_event(
            "stripe_subscription_linked",
            subscription=subscription,
            data={
                "stripe_subscription": state.id,
                "stripe_customer": state.customer,
                "stripe_status": state.stripe_status,
                "current_period_start": state.current_period_start,
                "next_renewal_at": state.current_period_end,
            },
        )
        plan_notices(subscription)
    return subscription


def _abandon(subscription: Subscription, refused: GatewayRefused | PriceMismatch) -> None:
    """End a subscription Stripe will not start: it never began, so no trial was used."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if not subscription.is_live:
            return
        subscription.transition_to(Status.CANCELED, trial_ends_at=None)
        record_event(
            "stripe_checkout_refused",
            subscription=subscription,
            data={
                "error": str(refused),
                "code": refused.code if isinstance(refused, GatewayRefused) else None,
            },
        )
        plan_notices(subscription)
    logger.info("Subscription %s: Stripe refused to start it: %s", subscription.pk, refused)
