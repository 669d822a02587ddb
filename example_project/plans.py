"""The demo's offers. Each is snapshotted into RenewalTerms when shown, so the terms a user
agrees to are always the ones on screen; editing an offer here makes new terms."""

from decimal import Decimal
from typing import Any

from django.http import Http404

from renewals.models import RenewalTerms

_CANCEL = "Open My subscriptions and press Turn off auto-renewal. It takes effect at once."

PLANS: dict[str, dict[str, Any]] = {
    "monthly": {
        "service_name": "Example Plus (monthly)",
        "amount": Decimal("25.00"),
        "currency": "CNY",
        "interval": "month",
        "trial_days": 7,
        "renewal_wording": (
            "I agree that Example Plus renews automatically every month at 25.00 CNY "
            "after the 7-day free trial, until I switch auto-renewal off."
        ),
        "cancellation_method": _CANCEL,
        "locale": "en",
    },
    "yearly": {
        "service_name": "Example Plus (yearly)",
        "amount": Decimal("238.00"),
        "currency": "CNY",
        "interval": "year",
        "renewal_wording": (
            "I agree that Example Plus renews automatically every year at 238.00 CNY, "
            "until I switch auto-renewal off."
        ),
        "cancellation_method": _CANCEL,
        "locale": "en",
    },
}


def current_terms(plan: str) -> RenewalTerms:
    """The terms of ``plan`` as offered now; 404 for an unknown plan."""
    if plan not in PLANS:
        raise Http404(f"No plan {plan!r}.")
    return RenewalTerms.objects.snapshot(**PLANS[plan])
