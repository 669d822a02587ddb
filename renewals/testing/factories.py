"""Terms and consent evidence for tests, with sensible defaults; keyword arguments override.

::

    terms = make_terms(amount=Decimal("30.00"))
    subscription = subscribe(user, terms, make_consent_evidence(terms), time_zone="Asia/Shanghai")
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..models import RenewalTerms
from ..services import ConsentEvidence


def make_terms(**overrides: Any) -> RenewalTerms:
    """Terms of a monthly subscription at 25.00 CNY, in Chinese (``RenewalTerms`` fields
    override): the snapshot that already exists if the same terms were made before."""
    fields: dict[str, Any] = {
        "service_name": "Example Plus",
        "amount": Decimal("25.00"),
        "currency": "CNY",
        "interval": "month",
        "renewal_wording": "Renews automatically every month at 25.00 CNY until you cancel.",
        "cancellation_method": "Open Account, then Subscriptions, and switch auto-renewal off.",
        "locale": "zh-hans",
    }
    return RenewalTerms.objects.snapshot(**{**fields, **overrides})


def make_consent_evidence(terms: RenewalTerms, **overrides: Any) -> ConsentEvidence:
    """Valid consent evidence for ``terms``: ticked by the user, from an unticked box, alone
    (``ConsentEvidence`` fields override)."""
    fields: dict[str, Any] = {
        "affirmative": True,
        "control_initially_unticked": True,
        "terms_hash": terms.content_hash,
        "channel": "web",
        "form_id": "tests.checkout",
        "ip_address": "203.0.113.7",
        "user_agent": "pytest",
        "locale": "zh-hans",
    }
    return ConsentEvidence(**{**fields, **overrides})
