"""Fixtures shared by the renewals tests; the data they make comes from :mod:`.factories`."""

from __future__ import annotations

import datetime as dt

import pytest
from pytest_django import Settings

from renewals.models import Subscription
from renewals.types import User

from .factories import PHONE, SUBSCRIBED_AT, make_user, revoke_consent, subscribe_with_consent
from .recipients import RESOLVER


@pytest.fixture
def user(db: None) -> User:
    """A subscriber whom the test resolver (``reachable_users``) reaches by SMS at ``PHONE``,
    in Chinese."""
    return make_user(first_name=PHONE, last_name="zh-hans")


@pytest.fixture
def subscription(user: User) -> Subscription:
    """``user``'s monthly ``cn`` subscription at 25.00 CNY, started with consent through
    ``subscribe()`` at ``SUBSCRIBED_AT`` (9:00 in Shanghai, the user's zone): it renews at
    ``FIRST_RENEWAL``, and that renewal's reminder is planned. It is billed by the gateway
    installed when it is made: a module that bills through another one installs it in an
    autouse fixture."""
    return subscribe_with_consent(user)


@pytest.fixture
def revoked_consent_subscription(subscription: Subscription) -> Subscription:
    """``subscription`` whose consent was revoked a day after it was given, while auto-renewal
    stayed on (see :func:`.factories.revoke_consent`)."""
    revoke_consent(subscription, at=SUBSCRIBED_AT + dt.timedelta(days=1))
    return subscription


@pytest.fixture
def reachable_users(settings: Settings) -> None:
    """Messages go to the recipients that :mod:`tests.renewals.recipients` resolves (the
    phone number in ``first_name``, the locale in ``last_name``), with no rate limit."""
    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "RECIPIENT_RESOLVER": RESOLVER,
        "RATE_LIMIT": None,
    }
