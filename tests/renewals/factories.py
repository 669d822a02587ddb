"""Plain functions that create test data with sensible defaults; keyword arguments override."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from renewals.models import RenewalTerms, Status, Subscription
from renewals.services import ConsentEvidence

_numbers = itertools.count(1)


def make_user(username: str | None = None, **fields: Any) -> AbstractBaseUser:
    username = username or f"user{next(_numbers)}"
    fields.setdefault("email", f"{username}@example.com")
    return get_user_model().objects.create_user(username=username, password="pw", **fields)


def make_terms(**overrides: Any) -> RenewalTerms:
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


def make_subscription(
    user: AbstractBaseUser | None = None, terms: RenewalTerms | None = None, **fields: Any
) -> Subscription:
    """An active, auto-renewing subscription created directly (no consent, no notices)."""
    now = timezone.now()
    defaults: dict[str, Any] = {
        "policy": "cn",
        "status": Status.ACTIVE,
        "auto_renew": True,
        "current_period_start": now,
        "next_renewal_at": now + dt.timedelta(days=30),
        "time_zone": "Asia/Shanghai",
    }
    return Subscription.objects.create(
        user=user or make_user(), terms=terms or make_terms(), **{**defaults, **fields}
    )


def make_evidence(terms: RenewalTerms, **overrides: Any) -> ConsentEvidence:
    """Valid consent evidence for ``terms``: ticked by the user, from an unticked box, alone."""
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
