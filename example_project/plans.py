"""The demo's offers. Each is snapshotted into RenewalTerms when shown, so the terms a user
agrees to are always the ones on screen; editing an offer here makes new terms.

The wording is snapshotted in the language of the page, which the terms record as their
``locale``. The service name is not translated: it names the service, of which a user holds
one live subscription whatever the language they subscribed in.
"""

from decimal import Decimal
from typing import Any

from django.http import Http404
from django.utils.translation import get_language, gettext, gettext_noop

from renewals.models import RenewalTerms

from .stripe_mode import stripe_price

_CANCEL = gettext_noop(
    "Open My subscriptions and press Turn off auto-renewal. It takes effect at once."
)

PLANS: dict[str, dict[str, Any]] = {
    "monthly": {
        "service_name": "Example Plus (monthly)",
        "amount": Decimal("25.00"),
        "currency": "CNY",
        "interval": "month",
        "trial_days": 7,
        "renewal_wording": gettext_noop(
            "I agree that Example Plus renews automatically every month at 25.00 CNY "
            "after the 7-day free trial, until I switch auto-renewal off."
        ),
        "cancellation_method": _CANCEL,
    },
    "yearly": {
        "service_name": "Example Plus (yearly)",
        "amount": Decimal("238.00"),
        "currency": "CNY",
        "interval": "year",
        "renewal_wording": gettext_noop(
            "I agree that Example Plus renews automatically every year at 238.00 CNY, "
            "until I switch auto-renewal off."
        ),
        "cancellation_method": _CANCEL,
    },
}

#: The offers' texts (in English, marked for translation), translated when an offer is shown.
_WORDING = ("renewal_wording", "cancellation_method")


def current_terms(plan: str) -> RenewalTerms:
    """The terms of ``plan`` as offered now, in the active language; 404 for an unknown plan."""
    if plan not in PLANS:
        raise Http404(f"No plan {plan!r}.")
    offer = {
        name: gettext(value) if name in _WORDING else value for name, value in PLANS[plan].items()
    }
    return RenewalTerms.objects.snapshot(
        **offer, locale=get_language(), stripe_price_id=stripe_price(plan)
    )
