"""Bringing subscriptions that Stripe already bills under this package
(``manage.py renewals_stripe_import``).

An imported subscription gets the terms its Stripe price fixes, the term and next renewal
Stripe reports on its items, and its notices; no consent is recorded for it, so the renewal
gate holds each renewal (:data:`~renewals.services.gate.AWAITING_CONSENT`) until the user
consents (:func:`~renewals.services.record_consent`). A subscription whose charge one set of
terms cannot state (several items, a quantity other than one, a metered or tiered price) is
left out and reported, and the import goes on.

The import walks Stripe's list page by page (newest first) and takes each subscription in its
own transaction, so a run stopped half way keeps what it did. Each is recorded as Stripe's
state as of the import (``gateway_event_created``), so an older event processed later
(``renewals_stripe_reprocess``) does not take it back. It is idempotent: a
subscription already here (by its Stripe id, unique per gateway) is left alone, and one that
a checkout here created but never recorded (its ``renewals_subscription`` metadata names a
subscription without a Stripe id) is linked rather than created again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from ..exceptions import GatewayRefused
from ..gateways.stripe import (
    METADATA_SUBSCRIPTION,
    METADATA_USER,
    StripeGateway,
    StripeSubscriptionState,
    price_terms,
    stripe_gateway,
    subscription_state,
)
from ..models import AuditEvent, RenewalTerms, Status, Subscription
from ..policies import resolve_policy
from ..types import User
from .audit import record_event
from .cancellation import gateway_state_as_of
from .gate import IMPORTED
from .scheduling import plan_notices
from .stripe_checkout import link_stripe_subscription

logger = logging.getLogger("renewals")

UserFor = Callable[[Mapping[str, Any]], User | None]


@dataclass(frozen=True)
class ImportOptions:
    """How imported subscriptions are set up here.

    ``locale``, ``renewal_wording`` and ``cancellation_method`` go into terms snapshotted for
    a price no terms here bill yet (empty wording: a default sentence in ``locale``);
    ``policy`` and ``time_zone``, when given, replace the policy resolver's pack and the
    site's zone; ``user_for(customer)`` finds the user of a Stripe customer (default:
    :func:`user_for_customer`).
    """

    locale: str
    time_zone: str
    renewal_wording: str = ""
    cancellation_method: str = ""
    policy: str | None = None
    user_for: UserFor | None = None  # default: user_for_customer


@dataclass
class ImportTotals:
    """What an import did, by Stripe subscription."""

    imported: int = 0
    linked: int = 0  # created by a checkout here that never recorded its Stripe id
    existing: int = 0  # here already
    not_live: int = 0  # incomplete, or ended: nothing to import
    no_user: list[str] = field(default_factory=list)  # their customer matched no user
    #: Stripe id -> why terms here cannot bill it (several items, a quantity, its price)
    unsupported: dict[str, str] = field(default_factory=dict)
    last_id: str | None = None  # where the next page starts


def import_stripe_subscriptions(
    options: ImportOptions,
    *,
    starting_after: str | None = None,
    page_size: int = 100,
    on_page: Callable[[ImportTotals], None] | None = None,
) -> ImportTotals:
    """Import every subscription Stripe bills that has not ended, from the one after
    ``starting_after`` (default: the newest) on, ``page_size`` per request; call
    ``on_page(totals)`` after each page."""
    gateway = stripe_gateway()
    totals = ImportTotals(last_id=starting_after)
    terms_cache: dict[str, RenewalTerms] = {}
    more = True
    while more:
        page, more = gateway.list_subscriptions(
            starting_after=totals.last_id, limit=page_size, expand_customer=True
        )
        known = set(
            Subscription.objects.filter(
                gateway=gateway.name, gateway_subscription_id__in=[obj["id"] for obj in page]
            ).values_list("gateway_subscription_id", flat=True)
        )
        for obj in page:
            state = subscription_state(obj)
            if state.id in known:
                totals.existing += 1
            elif state.status in (Status.PENDING, Status.CANCELED):
                totals.not_live += 1
            else:
                _import(gateway, obj, state, options, terms_cache, totals)
        if page:
            totals.last_id = page[-1]["id"]
        if on_page:
            on_page(totals)
    return totals


def last_imported_id() -> str | None:
    """The Stripe id of the subscription imported last: a stopped import resumes after it."""
    event = AuditEvent.objects.filter(kind=IMPORTED).order_by("-pk").first()
    return event.data["stripe_subscription"] if event else None


def user_for_customer(customer: Mapping[str, Any]) -> User | None:
    """The user a Stripe customer belongs to: the one its ``renewals_user`` metadata names
    (set on customers a checkout here creates), else the one user with its email
    (compared without case), else ``None``."""
    users = get_user_model()._default_manager
    user_id = (customer.get("metadata") or {}).get(METADATA_USER)
    if user_id:
        return users.filter(pk=user_id).first()
    email = customer.get("email")
    if not email:
        return None
    matches = list(
        users.filter(**{f"{get_user_model().get_email_field_name()}__iexact": email})[:2]
    )
    return matches[0] if len(matches) == 1 else None


def _import(
    gateway: StripeGateway,
    obj: Mapping[str, Any],
    state: StripeSubscriptionState,
    options: ImportOptions,
    terms_cache: dict[str, RenewalTerms],
    totals: ImportTotals,
) -> None:
    started = started_here(gateway, state)
    if started is not None:
        link_stripe_subscription(started, state)
        totals.linked += 1
        return
    problem = unsupported(obj)
    if problem is not None:
        logger.warning("Stripe subscription %s is not imported: %s", state.id, problem)
        totals.unsupported[state.id] = problem
        return
    user = (options.user_for or user_for_customer)(obj["customer"])
    if user is None:
        logger.warning("Stripe subscription %s: no user for customer %s.", state.id, state.customer)
        totals.no_user.append(state.id)
        return
    price = state.price
    assert price is not None  # a live subscription has an item
    if price["id"] not in terms_cache:
        terms_cache[price["id"]] = _terms_for(gateway, price, options)
    terms = terms_cache[price["id"]]
    try:
        with transaction.atomic():
            _create(gateway, user, terms, state, options)
    except IntegrityError:
        totals.existing += 1  # another import took it meanwhile
        return
    totals.imported += 1


def unsupported(obj: Mapping[str, Any]) -> str | None:
    """Why one set of terms cannot state what the Stripe subscription ``obj`` charges, or
    ``None`` if it can: it has one item, of quantity one, at a fixed recurring price."""
    items = obj["items"]["data"]
    if len(items) != 1:
        return f"it has {len(items)} items; terms bill one price"
    [item] = items
    if item.get("quantity", 1) != 1:
        return f"its item's quantity is {item.get('quantity')}; terms bill one unit"
    try:
        price_terms(item["price"])
    except GatewayRefused as exc:
        return str(exc)
    return None


def started_here(gateway: StripeGateway, state: StripeSubscriptionState) -> Subscription | None:
    """The subscription a checkout here started as Stripe's ``state`` (its
    ``renewals_subscription`` metadata) whose Stripe id was never recorded, if any."""
    pk = state.metadata.get(METADATA_SUBSCRIPTION, "")
    if not pk.isdigit():
        return None
    return Subscription.objects.filter(
        pk=int(pk), gateway=gateway.name, gateway_subscription_id=""
    ).first()


def _create(
    gateway: StripeGateway,
    user: User,
    terms: RenewalTerms,
    state: StripeSubscriptionState,
    options: ImportOptions,
) -> None:
    subscription = Subscription.objects.create(
        user=user,
        terms=terms,
        policy=options.policy or resolve_policy(user, terms),
        status=state.status,
        auto_renew=state.auto_renew,
        current_period_start=state.current_period_start,
        next_renewal_at=state.current_period_end,
        trial_ends_at=state.trial_end if state.status == Status.TRIALING else None,
        time_zone=options.time_zone,
        gateway=gateway.name,
        gateway_customer_id=state.customer,
        gateway_subscription_id=state.id,
        # Stripe's state as of now: an event created before the import is older than it.
        gateway_event_created=gateway_state_as_of(timezone.now()),
    )
    record_event(
        IMPORTED,
        subscription=subscription,
        data={
            "stripe_subscription": state.id,
            "stripe_customer": state.customer,
            "stripe_status": state.stripe_status,
            "terms": terms.pk,
            "terms_hash": terms.content_hash,
            "policy": subscription.policy,
            "auto_renew": subscription.auto_renew,
            "next_renewal_at": subscription.next_renewal_at,
            "consent": "awaited",
        },
    )
    plan_notices(subscription)


def _terms_for(
    gateway: StripeGateway, price: Mapping[str, Any], options: ImportOptions
) -> RenewalTerms:
    """The newest terms here that bill ``price`` as it is, without a trial (subscribers
    have had theirs); else new terms from the price, its product's name and the wording."""
    fixed = {**price_terms(price), "trial_days": 0}
    existing = RenewalTerms.objects.filter(**fixed).order_by("-pk").first()
    if existing is not None:
        return existing
    product = gateway.retrieve_price(price["id"])["product"]
    service_name = product["name"] if isinstance(product, Mapping) else price.get("nickname")
    draft = RenewalTerms(**fixed)
    with translation.override(options.locale):
        renewal_wording = options.renewal_wording or gettext(
            "Renews automatically at %(price)s until you switch auto-renewal off."
        ) % {"price": draft.price_display}
        cancellation_method = options.cancellation_method or gettext(
            "Switch auto-renewal off on your subscriptions page, at any time."
        )
    return RenewalTerms.objects.snapshot(
        **fixed,
        service_name=service_name or price["id"],
        renewal_wording=renewal_wording,
        cancellation_method=cancellation_method,
        locale=options.locale,
    )
