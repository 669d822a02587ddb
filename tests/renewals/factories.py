"""Plain functions that create test data with sensible defaults; keyword arguments override.

The package's public test helpers (:mod:`renewals.testing.factories`) make the terms and the
consent evidence; this module adds users, subscriptions (started through ``subscribe()``, or
made directly with or without consent), and the dates and phone number the shared fixtures
(``conftest.py``) use.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from freezegun import freeze_time

from renewals.models import Consent, RenewalTerms, RevokedVia, Status, Subscription
from renewals.services import plan_notices, record_consent, subscribe
from renewals.testing.factories import make_consent_evidence as make_evidence
from renewals.testing.factories import make_terms
from renewals.types import User

__all__ = [
    "FIRST_RENEWAL",
    "PHONE",
    "SUBSCRIBED_AT",
    "make_consented_subscription",
    "make_evidence",
    "make_subscription",
    "make_terms",
    "make_user",
    "revoke_consent",
    "subscribe_with_consent",
]

#: When :func:`subscribe_with_consent` subscribes by default (9:00 in Shanghai), and the first
#: renewal of a monthly subscription started then.
SUBSCRIBED_AT = dt.datetime(2027, 2, 10, 1, tzinfo=dt.UTC)
FIRST_RENEWAL = dt.datetime(2027, 3, 10, 1, tzinfo=dt.UTC)
#: A mobile number in China, where :mod:`tests.renewals.recipients` reads it (``first_name``).
PHONE = "+8613812345678"

_numbers = itertools.count(1)


def make_user(username: str | None = None, **fields: Any) -> User:
    username = username or f"user{next(_numbers)}"
    fields.setdefault("email", f"{username}@example.com")
    return get_user_model().objects.create_user(username=username, password="pw", **fields)


def make_subscription(
    user: User | None = None, terms: RenewalTerms | None = None, **fields: Any
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


def subscribe_with_consent(
    user: User | None = None,
    terms: RenewalTerms | None = None,
    *,
    at: dt.datetime = SUBSCRIBED_AT,
    **options: Any,
) -> Subscription:
    """A subscription started through ``subscribe()`` at ``at``, as a checkout starts one:
    ``user`` (default: a new one) consents to ``terms`` (default: :func:`make_terms`), and
    the first renewal's notices are planned. ``options`` go to ``subscribe()``; the user's
    zone is Asia/Shanghai unless ``time_zone`` says otherwise."""
    terms = terms or make_terms()
    options.setdefault("time_zone", "Asia/Shanghai")
    with freeze_time(at):
        return subscribe(user or make_user(), terms, make_evidence(terms), **options)


def make_consented_subscription(*, at: dt.datetime, **fields: Any) -> Subscription:
    """:func:`make_subscription` (``fields``) at ``at``, with its user's consent to its terms
    on record and its notices planned: for a subscription whose renewal is not the one
    ``subscribe()`` would give."""
    with freeze_time(at):
        subscription = make_subscription(**fields)
        record_consent(subscription, make_evidence(subscription.terms), actor=subscription.user)
        plan_notices(subscription)
    return subscription


def revoke_consent(subscription: Subscription, *, at: dt.datetime) -> None:
    """Revoke the subscription's consents at ``at`` as a project's own code could (a support
    tool writing the rows), leaving auto-renewal on: a state the package's services never
    make, and one the renewal gate must refuse."""
    Consent.objects.filter(subscription=subscription, revoked_at__isnull=True).update(
        revoked_at=at, revoked_via=RevokedVia.SUPPORT
    )


def renewal_of(subscription: Subscription) -> dt.datetime:
    """The subscription's next renewal, which it must have."""
    assert subscription.next_renewal_at is not None
    return subscription.next_renewal_at
