"""Stripe as the billing processor, on the SDK's ``StripeClient`` (``client.v1.*``) and the API
version the installed SDK pins.

Every change is sent with an idempotency key derived from what it does (the installation,
the subscription, the operation, and the invoice or the recorded change it concerns), so a
retried task or renewal run makes no second change at Stripe, which keeps keys for 24 hours,
while each new change has a key of its own. Stripe's answers become
:class:`~renewals.exceptions.GatewayUnavailable` when trying again later may help (rate
limits, Stripe's own errors, no connection) and :class:`~renewals.exceptions.GatewayRefused`,
with Stripe's message, when it will not.

The renewal gate holds a renewal by keeping the renewal's draft invoice (``billing_reason``
``subscription_cycle``) from advancing (``auto_advance=false``): Stripe finalizes and charges
a draft about an hour after it creates it, and never one that does not advance. The held
draft's id is kept on the subscription (``held_invoice_id``); releasing finalizes it, and
switching auto-renewal off voids it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import stripe
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..exceptions import GatewayError, GatewayRefused, GatewayUnavailable
from ..models import AuditEvent, Consent, Status
from ..models.terms import ZERO_DECIMAL_CURRENCIES
from .base import Period

if TYPE_CHECKING:
    from ..models import Subscription

logger = logging.getLogger("renewals.gateways")

#: Stripe subscription status -> ours. ``unpaid`` keeps the subscription but stops trying to
#: collect, which we treat as a renewal payment that failed; ``paused`` (a trial that ended
#: without a payment method) as a renewal held.
STATUSES: dict[str, Status] = {
    "incomplete": Status.PENDING,
    "trialing": Status.TRIALING,
    "active": Status.ACTIVE,
    "past_due": Status.PAST_DUE,
    "unpaid": Status.PAST_DUE,
    "paused": Status.ON_HOLD,
    "incomplete_expired": Status.CANCELED,
    "canceled": Status.CANCELED,
}

#: Currencies Stripe counts in thousandths.
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})

#: Metadata keys this package sets on Stripe subscriptions and customers.
METADATA_SUBSCRIPTION = "renewals_subscription"
METADATA_CONSENT = "renewals_consent"
METADATA_TERMS_HASH = "renewals_terms_hash"
METADATA_USER = "renewals_user"

#: The audit events of the auto-renewal changes :meth:`StripeGateway.set_auto_renew` sends:
#: a switch here, or a switch at Stripe refused. The newest one's sequence in the
#: subscription's chain names the change in the idempotency key.
AUTO_RENEW_CHANGES = (
    "auto_renewal_cancelled",
    "auto_renewal_resumed",
    "gateway_auto_renew_refused",
)

#: Seconds the SDK waits for Stripe's answer by default (the SDK's own default is 80): the
#: gateway is called while the subscription's row is locked.
DEFAULT_TIMEOUT = 10.0

_T = TypeVar("_T")


@dataclass(frozen=True)
class StripeSubscriptionState:
    """What a Stripe subscription object says, in this package's terms.

    The period comes from the subscription's items (``items.data[].current_period_*``): the
    API version the SDK pins has no top-level ``current_period_end``. With items on different
    periods, the term is the one that ends first, the next time Stripe bills.
    """

    id: str
    customer: str
    stripe_status: str
    status: Status
    current_period_start: dt.datetime | None
    current_period_end: dt.datetime | None
    trial_end: dt.datetime | None
    cancel_at_period_end: bool
    cancel_at: dt.datetime | None
    canceled_at: dt.datetime | None
    price: Mapping[str, Any] | None  # of the item that renews first
    metadata: Mapping[str, str]

    @property
    def auto_renew(self) -> bool:
        """Stripe will bill another term: nothing ends the subscription at a set time."""
        return (
            self.status not in (Status.CANCELED, Status.PENDING)
            and not self.cancel_at_period_end
            and self.cancel_at is None
        )

    @property
    def ordering(self) -> tuple[int, int]:
        """Orders two snapshots of one subscription without a clock: a later term is newer,
        and within a term an ended subscription is newer than a live one. Equal values are
        ambiguous (e.g. ``cancel_at_period_end`` switched within a term)."""
        start = self.current_period_start
        return (int(start.timestamp()) if start else 0, int(self.status == Status.CANCELED))


def subscription_state(obj: Mapping[str, Any]) -> StripeSubscriptionState:
    """The :class:`StripeSubscriptionState` of a Stripe subscription object (a dict from a
    webhook payload or :meth:`StripeGateway.retrieve_subscription`)."""
    items = obj["items"]["data"]
    first = min(items, key=lambda item: item["current_period_end"], default=None)
    customer = obj["customer"]
    return StripeSubscriptionState(
        id=obj["id"],
        customer=customer if isinstance(customer, str) else customer["id"],
        stripe_status=obj["status"],
        status=STATUSES[obj["status"]],
        current_period_start=_time(first["current_period_start"]) if first else None,
        current_period_end=_time(first["current_period_end"]) if first else None,
        trial_end=_time(obj.get("trial_end")),
        cancel_at_period_end=bool(obj.get("cancel_at_period_end")),
        cancel_at=_time(obj.get("cancel_at")),
        canceled_at=_time(obj.get("canceled_at")),
        price=first["price"] if first else None,
        metadata=obj.get("metadata") or {},
    )


def price_terms(price: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~renewals.models.RenewalTerms` fields a recurring Stripe price fixes:
    ``amount``, ``currency``, ``interval``, ``interval_count``, ``trial_days`` and
    ``stripe_price_id``."""
    recurring = price.get("recurring")
    if (
        price.get("unit_amount") is None
        or not recurring
        or price.get("billing_scheme", "per_unit") != "per_unit"
        or recurring.get("usage_type", "licensed") != "licensed"
    ):
        raise GatewayRefused(
            f"Stripe price {price['id']} is not a recurring price with a fixed unit amount; "
            "auto-renewal terms need one."
        )
    currency = price["currency"].upper()
    return {
        "amount": Decimal(price["unit_amount"]).scaleb(-_decimals(currency)),
        "currency": currency,
        "interval": recurring["interval"],
        "interval_count": recurring["interval_count"],
        "trial_days": recurring.get("trial_period_days") or 0,
        "stripe_price_id": price["id"],
    }


def minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` of ``currency`` in the smallest unit Stripe counts (cents, yen, fils)."""
    return int(amount.scaleb(_decimals(currency)))


class StripeGateway:
    """The :class:`~renewals.gateways.BillingGateway` for Stripe.

    Options (``RENEWALS["GATEWAY"]["OPTIONS"]``): ``api_key`` (a secret or restricted key),
    ``webhook_secret`` (the endpoint's signing secret, or a list of them while rotating),
    ``http_client`` (a ``stripe.HTTPClient`` or the dotted path of one; default: the SDK's
    ``RequestsClient`` with ``timeout``), ``timeout`` (seconds, default
    :data:`DEFAULT_TIMEOUT`; for the default client only), ``max_network_retries`` (default 2;
    the SDK retries connection errors, 409 and 5xx with the same idempotency key) and
    ``idempotency_prefix`` (names this installation in every idempotency key; default: a
    hash of ``SECRET_KEY``), so installations sharing a Stripe account never share a key.
    """

    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str = "",
        webhook_secret: str | Sequence[str] | None = None,
        http_client: str | stripe.HTTPClient | None = None,
        max_network_retries: int = 2,
        timeout: float = DEFAULT_TIMEOUT,
        idempotency_prefix: str | None = None,
    ) -> None:
        option = "The Stripe gateway's OPTIONS"
        if not isinstance(api_key, str):
            raise ImproperlyConfigured(f"{option}['api_key'] must be a string.")
        if isinstance(max_network_retries, bool) or not isinstance(max_network_retries, int):
            raise ImproperlyConfigured(f"{option}['max_network_retries'] must be an integer.")
        if max_network_retries < 0:
            raise ImproperlyConfigured(f"{option}['max_network_retries'] must be 0 or more.")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ImproperlyConfigured(f"{option}['timeout'] must be a number of seconds above 0.")
        if idempotency_prefix is not None and (
            not isinstance(idempotency_prefix, str) or not idempotency_prefix
        ):
            raise ImproperlyConfigured(
                f"{option}['idempotency_prefix'] must be a non-empty string."
            )
        secrets = [webhook_secret] if isinstance(webhook_secret, str) else webhook_secret or []
        if not all(isinstance(secret, str) for secret in secrets):
            raise ImproperlyConfigured(
                f"{option}['webhook_secret'] must be a signing secret or a list of them."
            )
        self.api_key = api_key
        self.webhook_secrets: tuple[str, ...] = tuple(secret for secret in secrets if secret)
        self.idempotency_prefix = idempotency_prefix or default_idempotency_prefix()
        self.client = stripe.StripeClient(
            api_key,
            http_client=_http_client(http_client) or stripe.RequestsClient(timeout=timeout),
            max_network_retries=max_network_retries,
        )

    # --- BillingGateway ---------------------------------------------------------------------

    def set_auto_renew(self, subscription: Subscription, enabled: bool) -> None:
        """``cancel_at_period_end`` off (on), with the consent renewals go on under as
        metadata (none when off). Turned off, the renewal's draft invoice, if Stripe made it
        already, is voided: nothing is charged; and if the subscription has ended here (a
        lapsed renewal) while Stripe has started the next term (the draft), the Stripe
        subscription is canceled now, so it does not run a term unpaid. A subscription not yet
        at Stripe has nothing to tell;
        :func:`~renewals.services.stripe_checkout.start_stripe_subscription` creates it in the
        state it is in then."""
        if not subscription.gateway_subscription_id:
            logger.info("Subscription %s is not at Stripe yet; nothing to sync.", subscription.pk)
            return
        consent = (
            Consent.objects.filter(subscription=subscription).order_by("-pk").first()
            if enabled
            else None
        )
        self._call(
            self.client.v1.subscriptions.update,
            subscription.gateway_subscription_id,
            {
                "cancel_at_period_end": not enabled,
                "metadata": consent_metadata(consent),
            },
            # Named by the change it sends: a retried sync of one change has its key, the
            # next change (say, off again after a switch on at Stripe) a new one.
            key=self._key(
                subscription,
                "auto_renew_on" if enabled else "auto_renew_off",
                _auto_renew_change(subscription),
            ),
        )
        if enabled:
            return
        drafts = self._renewal_drafts(subscription)
        for invoice_id in drafts:
            self.void_invoice(invoice_id, subscription=subscription)
        if drafts and not subscription.is_live:
            self._call(
                self.client.v1.subscriptions.cancel,
                subscription.gateway_subscription_id,
                {"prorate": False, "invoice_now": False},
            )

    def hold_renewal(self, subscription: Subscription, renewal_at: dt.datetime) -> None:
        """Hold the renewal's draft invoice if Stripe has made it; if not yet, the gate holds
        it when Stripe announces it (``invoice.created``), since the subscription is then
        held here."""
        drafts = self._renewal_drafts(subscription)
        for invoice_id in drafts:
            self.hold_invoice(invoice_id, subscription=subscription)
        if not drafts:
            logger.info(
                "Subscription %s: Stripe has no draft for the renewal at %s yet.",
                subscription.pk,
                renewal_at.isoformat(),
            )

    def release_renewal(self, subscription: Subscription, renewal_at: dt.datetime) -> None:
        """Finalize the held draft, letting Stripe collect it."""
        for invoice_id in self._renewal_drafts(subscription):
            self.finalize_invoice(invoice_id, subscription=subscription)

    def renew(self, subscription: Subscription, renewal_at: dt.datetime) -> Period:
        """Let the renewal invoice go (a draft still held is finalized) and return the term
        Stripe now bills. Stripe renews on its own at the period end; until it has moved the
        subscription past ``renewal_at`` this raises :class:`GatewayUnavailable`, and the
        next renewal run takes the subscription again."""
        if subscription.held_invoice_id:
            self.finalize_invoice(subscription.held_invoice_id, subscription=subscription)
        state = subscription_state(self.retrieve_subscription(self._stripe_id(subscription)))
        if state.status in (Status.CANCELED, Status.PENDING):
            raise GatewayRefused(
                f"Stripe subscription {state.id} is {state.stripe_status}; it does not renew."
            )
        start, end = state.current_period_start, state.current_period_end
        if start is None or end is None or end <= renewal_at:
            raise GatewayUnavailable(
                f"Stripe subscription {state.id} has not started the term after "
                f"{renewal_at.isoformat()} yet."
            )
        return Period(start, end)

    def check(self) -> list[CheckMessage]:
        messages: list[CheckMessage] = []
        if not self.api_key:
            messages.append(
                Error(
                    "The Stripe gateway's OPTIONS['api_key'] is not set.",
                    hint="Set it to a secret key (sk_...) or restricted key (rk_...) from "
                    "the Stripe dashboard, e.g. from an environment variable.",
                    id="renewals.E014",
                )
            )
        elif not self.api_key.startswith(("sk_", "rk_")):
            messages.append(
                Error(
                    "The Stripe gateway's OPTIONS['api_key'] is not a secret or restricted key.",
                    hint="Publishable keys (pk_...) cannot act on subscriptions; use sk_... "
                    "or rk_....",
                    id="renewals.E016",
                )
            )
        elif self.api_key.startswith(("sk_test_", "rk_test_")) and not settings.DEBUG:
            messages.append(
                Warning(
                    "The Stripe gateway uses a test-mode key while DEBUG is False: nothing "
                    "is charged for real.",
                    hint="Use the live key (sk_live_... or rk_live_...) in production.",
                    id="renewals.W011",
                )
            )
        if not self.webhook_secrets:
            messages.append(
                Error(
                    "The Stripe gateway's OPTIONS['webhook_secret'] is not set, so no Stripe "
                    "event can be verified.",
                    hint="Set it to the signing secret (whsec_...) of the webhook endpoint; "
                    "a list of secrets while rotating.",
                    id="renewals.E015",
                )
            )
        return messages

    # --- invoices ---------------------------------------------------------------------------

    def hold_invoice(self, invoice_id: str, *, subscription: Subscription) -> None:
        """Keep a renewal draft from advancing (``auto_advance=false``): Stripe neither
        finalizes nor charges it. Recorded as the subscription's ``held_invoice_id``."""
        self._call(
            self.client.v1.invoices.update,
            invoice_id,
            {"auto_advance": False},
            key=self._key(subscription, "hold", invoice_id),
        )
        _remember_held(subscription, invoice_id)

    def finalize_invoice(self, invoice_id: str, *, subscription: Subscription) -> None:
        """Let a held renewal invoice be charged: a draft is finalized with ``auto_advance``
        on, so Stripe collects it; an open invoice gets ``auto_advance`` back; a paid or void
        one is left alone."""
        invoice = self._call(self.client.v1.invoices.retrieve, invoice_id)
        if invoice.status == "draft":
            self._call(
                self.client.v1.invoices.finalize_invoice,
                invoice_id,
                {"auto_advance": True},
                key=self._key(subscription, "finalize", invoice_id),
            )
        elif invoice.status == "open" and not invoice.auto_advance:
            self._call(
                self.client.v1.invoices.update,
                invoice_id,
                {"auto_advance": True},
                key=self._key(subscription, "release", invoice_id),
            )
        _forget_held(subscription, invoice_id)

    def void_invoice(self, invoice_id: str, *, subscription: Subscription) -> None:
        """Make sure a renewal invoice is never charged. Stripe voids only finalized invoices
        (and deletes no subscription's draft), so a draft is first finalized without
        ``auto_advance``, which charges nothing, but pays one that is free or that the
        customer's credit covers. A paid invoice cannot be voided: that is logged, for a
        refund."""
        invoice = self._call(self.client.v1.invoices.retrieve, invoice_id)
        if invoice.status == "draft":
            invoice = self._call(
                self.client.v1.invoices.finalize_invoice,
                invoice_id,
                {"auto_advance": False},
                key=self._key(subscription, "finalize_to_void", invoice_id),
            )
        if invoice.status in ("open", "uncollectible"):
            self._call(
                self.client.v1.invoices.void_invoice,
                invoice_id,
                key=self._key(subscription, "void", invoice_id),
            )
        elif invoice.status == "paid":
            logger.warning(
                "Subscription %s: renewal invoice %s was paid before it could be voided.",
                subscription.pk,
                invoice_id,
            )
        _forget_held(subscription, invoice_id)

    # --- reading and creating ---------------------------------------------------------------

    def retrieve_subscription(self, stripe_subscription_id: str) -> dict[str, Any]:
        """The Stripe subscription object, as a plain dict."""
        obj = self._call(self.client.v1.subscriptions.retrieve, stripe_subscription_id)
        return obj.to_dict(for_json=True)

    def list_subscriptions(
        self, *, starting_after: str | None = None, limit: int = 100, expand_customer: bool = False
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of the account's subscriptions that have not ended, newest first, and
        whether more follow (pass the last id as ``starting_after``)."""
        params: dict[str, Any] = {"limit": limit}
        if starting_after:
            params["starting_after"] = starting_after
        if expand_customer:
            params["expand"] = ["data.customer"]
        page = self._call(self.client.v1.subscriptions.list, params)
        return [obj.to_dict(for_json=True) for obj in page.data], bool(page.has_more)

    def list_events(
        self, *, types: Sequence[str], since: dt.datetime, starting_after: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page (100) of the events of ``types`` created at or after ``since``, newest
        first, and whether more follow. Stripe keeps events for 30 days."""
        params: dict[str, Any] = {
            "types": list(types),
            "created": {"gte": int(since.timestamp())},
            "limit": 100,
        }
        if starting_after:
            params["starting_after"] = starting_after
        page = self._call(self.client.v1.events.list, params)
        return [obj.to_dict(for_json=True) for obj in page.data], bool(page.has_more)

    def retrieve_price(self, price_id: str) -> dict[str, Any]:
        """A price, with its product expanded."""
        obj = self._call(self.client.v1.prices.retrieve, price_id, {"expand": ["product"]})
        return obj.to_dict(for_json=True)

    def create_customer(self, subscription: Subscription, *, email: str) -> str:
        """A Stripe customer for the subscription's user; its id."""
        customer = self._call(
            self.client.v1.customers.create,
            {"email": email, "metadata": {METADATA_USER: str(subscription.user_id)}},
            key=self._key(subscription, "customer"),
        )
        return str(customer.id)

    def create_subscription(
        self, subscription: Subscription, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Create the Stripe subscription of ``subscription`` from ``params`` (see
        :func:`~renewals.services.stripe_checkout.start_stripe_subscription`)."""
        obj = self._call(
            self.client.v1.subscriptions.create, params, key=self._key(subscription, "create")
        )
        return obj.to_dict(for_json=True)

    # --- internals --------------------------------------------------------------------------

    def _renewal_drafts(self, subscription: Subscription) -> list[str]:
        """The held draft if one is recorded, else the subscription's renewal drafts."""
        if subscription.held_invoice_id:
            return [subscription.held_invoice_id]
        page = self._call(
            self.client.v1.invoices.list,
            {"subscription": self._stripe_id(subscription), "status": "draft", "limit": 10},
        )
        return [
            invoice.id for invoice in page.data if invoice.billing_reason == "subscription_cycle"
        ]

    def _stripe_id(self, subscription: Subscription) -> str:
        if not subscription.gateway_subscription_id:
            raise GatewayRefused(
                f"Subscription {subscription.pk} has no Stripe subscription "
                "(gateway_subscription_id is empty)."
            )
        return subscription.gateway_subscription_id

    def _key(self, subscription: Subscription, operation: str, *about: object) -> str:
        """``renewals:<installation>:<subscription>:<operation>[:<what it acts on>]``: the
        same change, asked again, has the same key; another installation's, another one."""
        return ":".join(
            ["renewals", self.idempotency_prefix, str(subscription.pk), operation, *map(str, about)]
        )

    def _call(self, method: Callable[..., _T], *args: Any, key: str | None = None) -> _T:
        with translated_errors():
            return method(*args, options={"idempotency_key": key} if key else {})


def consent_metadata(consent: Consent | None) -> dict[str, str]:
    """The consent a Stripe subscription renews under, as metadata; without one, the keys
    are cleared (Stripe unsets a key set to an empty string)."""
    return {
        METADATA_CONSENT: str(consent.pk) if consent else "",
        METADATA_TERMS_HASH: consent.terms_hash if consent else "",
    }


@contextmanager
def translated_errors() -> Iterator[None]:
    """Raise Stripe's errors as :class:`GatewayUnavailable` (worth trying again: no
    connection, 429, 409 and 5xx, after the SDK's own retries) or :class:`GatewayRefused`."""
    try:
        yield
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise GatewayUnavailable(_message(exc)) from exc
    except stripe.StripeError as exc:
        if exc.http_status is not None and (exc.http_status >= 500 or exc.http_status == 409):
            raise GatewayUnavailable(_message(exc)) from exc
        raise GatewayRefused(_message(exc), code=exc.code) from exc


def _message(exc: stripe.StripeError) -> str:
    return f"Stripe: {exc.user_message or exc}"


def default_idempotency_prefix() -> str:
    """This installation's part of the idempotency keys when none is configured: a short
    HMAC of ``SECRET_KEY`` (never the key itself), so databases restored or copied to
    another installation keep apart as long as their secret keys differ."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), b"renewals.gateways.stripe.idempotency", hashlib.sha256
    )
    return digest.hexdigest()[:12]


def _auto_renew_change(subscription: Subscription) -> int | str:
    """The sequence of the newest :data:`AUTO_RENEW_CHANGES` event in the subscription's
    audit chain, or ``none``."""
    sequence = (
        AuditEvent.objects.filter(subscription=subscription, kind__in=AUTO_RENEW_CHANGES)
        .order_by("-sequence")
        .values_list("sequence", flat=True)
        .first()
    )
    return "none" if sequence is None else sequence


def _remember_held(subscription: Subscription, invoice_id: str) -> None:
    if subscription.held_invoice_id != invoice_id:
        subscription.held_invoice_id = invoice_id
        subscription.save(update_fields=["held_invoice_id", "updated_at"])


def _forget_held(subscription: Subscription, invoice_id: str) -> None:
    if subscription.held_invoice_id == invoice_id:
        subscription.held_invoice_id = None
        subscription.save(update_fields=["held_invoice_id", "updated_at"])


def _http_client(value: str | stripe.HTTPClient | None) -> stripe.HTTPClient | None:
    if not isinstance(value, str):
        return value
    try:
        client = import_string(value)()
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"The Stripe gateway's OPTIONS['http_client'] = {value!r} cannot be imported: {exc}"
        ) from exc
    if not isinstance(client, stripe.HTTPClient):
        raise ImproperlyConfigured(
            f"The Stripe gateway's OPTIONS['http_client'] = {value!r} is not a stripe.HTTPClient."
        )
    return client


def _decimals(currency: str) -> int:
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    return 3 if currency in THREE_DECIMAL_CURRENCIES else 2


def _time(seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC)


def stripe_gateway() -> StripeGateway:
    """The configured Stripe gateway (``RENEWALS["GATEWAY"]`` or ``["GATEWAYS"]["stripe"]``);
    :class:`~renewals.exceptions.GatewayError` if none is."""
    from . import gateway_named

    gateway = gateway_named(StripeGateway.name)
    if not isinstance(gateway, StripeGateway):
        raise GatewayError(
            f"The gateway named 'stripe' is a {type(gateway).__name__}, not a StripeGateway."
        )
    return gateway
