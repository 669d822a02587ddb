"""The example's Stripe mode, on when ``STRIPE_SECRET_KEY`` is set (see ``settings.py``).

New subscriptions are billed by the ``StripeGateway`` at the Stripe prices named by
``STRIPE_PRICE_MONTHLY`` and ``STRIPE_PRICE_YEARLY``, and the webhook keeps them in step.
The example has no card form: it runs on a test-mode key only and pays with Stripe's test
card. A real site collects the payment method on the checkout page with Stripe's elements and
passes it to ``start_stripe_subscription`` (docs/stripe.md, "Checkout").
"""

from __future__ import annotations

from django.conf import settings

from notifications.types import User
from renewals.gateways import get_gateway
from renewals.gateways.stripe import StripeGateway, translated_errors
from renewals.models import Subscription

#: Stripe's test card (Visa, always succeeds), usable with test-mode keys only.
TEST_CARD = "pm_card_visa"


def stripe_price(plan: str) -> str:
    """The Stripe price that bills ``plan`` (``settings.EXAMPLE_STRIPE_PRICES``); empty
    outside Stripe mode."""
    prices: dict[str, str] = getattr(settings, "EXAMPLE_STRIPE_PRICES", {})
    return prices.get(plan, "")


def stripe_customer(user: User) -> str | None:
    """In Stripe mode, the Stripe customer that pays for ``user``'s new subscription: the
    one of an earlier subscription, else a new one paying with :data:`TEST_CARD`. ``None``
    when new subscriptions are not billed by Stripe."""
    gateway = get_gateway()
    if not isinstance(gateway, StripeGateway):
        return None
    known = (
        Subscription.objects.filter(user=user, gateway=gateway.name)
        .exclude(gateway_customer_id="")
        .values_list("gateway_customer_id", flat=True)
        .first()
    )
    return known or _test_customer(gateway, user)


def _test_customer(gateway: StripeGateway, user: User) -> str:
    """A new Stripe customer for ``user`` with the test card as the default payment method
    (the same one if asked again: an idempotency key per user)."""
    with translated_errors():
        customer = gateway.client.v1.customers.create(
            {
                "email": user.email,
                "payment_method": TEST_CARD,
                "invoice_settings": {"default_payment_method": TEST_CARD},
                "metadata": {"example_user": str(user.pk)},
            },
            {"idempotency_key": f"example:{gateway.idempotency_prefix}:user:{user.pk}:customer"},
        )
    return str(customer.id)
