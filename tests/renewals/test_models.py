"""Terms are immutable and hashed; the subscription state machine refuses illegal moves."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from renewals.exceptions import IllegalTransition
from renewals.models import TRANSITIONS, RenewalTerms, Status
from renewals.models.terms import format_amount
from renewals.periods import add_interval, calendar_days

from .factories import make_subscription, make_terms

pytestmark = pytest.mark.django_db


def test_same_content_gives_the_same_row_and_hash() -> None:
    first = make_terms()
    second = make_terms(amount=Decimal("25.0000"))
    assert first.pk == second.pk
    assert len(first.content_hash) == 64
    assert RenewalTerms.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"amount": Decimal("25.01")},
        {"currency": "USD"},
        {"interval": "year"},
        {"interval_count": 3},
        {"trial_days": 7},
        {"renewal_wording": "Renews monthly."},
        {"cancellation_method": "Write to us."},
        {"locale": "en"},
        {"stripe_price_id": "price_123"},
        {"service_name": "Example Max"},
        {"trial_once_per_user": False},
    ],
)
def test_every_shown_field_changes_the_hash(change: dict[str, Any]) -> None:
    assert make_terms(**change).content_hash != make_terms().content_hash


def test_the_trial_rule_at_its_default_leaves_older_hashes_as_they_were() -> None:
    terms = make_terms()
    assert "trial_once_per_user" not in terms.content()
    assert terms.compute_hash() == terms.content_hash
    assert make_terms(trial_once_per_user=False).content()["trial_once_per_user"] is False


def test_terms_cannot_be_edited() -> None:
    terms = make_terms()
    terms.amount = Decimal("1.00")
    with pytest.raises(ValidationError, match="immutable"):
        terms.save()


@pytest.mark.parametrize("currency", ["cny", "RMB1", "EURO", ""])
def test_currency_must_be_iso_4217(currency: str) -> None:
    with pytest.raises(ValidationError, match="currency"):
        make_terms(currency=currency)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("25", "CNY", "25.00"),
        ("9.9", "USD", "9.90"),
        ("1000", "JPY", "1000"),
        ("0.125", "KWD", "0.125"),
    ],
)
def test_amounts_are_shown_with_their_minor_units(amount: str, currency: str, shown: str) -> None:
    assert format_amount(Decimal(amount), currency) == shown


def test_illegal_transition_raises_and_changes_nothing() -> None:
    subscription = make_subscription(status=Status.CANCELED)
    with pytest.raises(IllegalTransition, match="'canceled' to 'active'"):
        subscription.transition_to(Status.ACTIVE)
    subscription.refresh_from_db()
    assert subscription.status == Status.CANCELED


def test_every_status_has_its_transitions_listed() -> None:
    assert set(TRANSITIONS) == set(Status.values)
    for targets in TRANSITIONS.values():
        assert targets <= set(Status.values)


def test_legal_transition_saves_its_changes() -> None:
    subscription = make_subscription(status=Status.ACTIVE)
    moment = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    subscription.transition_to(Status.ON_HOLD, next_renewal_at=moment)
    subscription.refresh_from_db()
    assert (subscription.status, subscription.next_renewal_at) == (Status.ON_HOLD, moment)


SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("start", "interval", "count", "expected"),
    [
        (
            dt.datetime(2027, 1, 31, 9, tzinfo=SHANGHAI),
            "month",
            1,
            dt.datetime(2027, 2, 28, 9, tzinfo=SHANGHAI),
        ),
        (
            dt.datetime(2028, 1, 31, 9, tzinfo=SHANGHAI),
            "month",
            1,
            dt.datetime(2028, 2, 29, 9, tzinfo=SHANGHAI),
        ),
        (
            dt.datetime(2027, 11, 30, 9, tzinfo=SHANGHAI),
            "month",
            3,
            dt.datetime(2028, 2, 29, 9, tzinfo=SHANGHAI),
        ),
        (
            dt.datetime(2028, 2, 29, 9, tzinfo=SHANGHAI),
            "year",
            1,
            dt.datetime(2029, 2, 28, 9, tzinfo=SHANGHAI),
        ),
        # Local wall-clock time is kept across a DST change.
        (
            dt.datetime(2027, 3, 20, 9, tzinfo=BERLIN),
            "week",
            2,
            dt.datetime(2027, 4, 3, 9, tzinfo=BERLIN),
        ),
        (
            dt.datetime(2027, 3, 27, 9, tzinfo=BERLIN),
            "day",
            1,
            dt.datetime(2027, 3, 28, 9, tzinfo=BERLIN),
        ),
    ],
)
def test_add_interval_follows_the_local_calendar(
    start: dt.datetime, interval: str, count: int, expected: dt.datetime
) -> None:
    zone = start.tzinfo
    assert isinstance(zone, ZoneInfo)
    assert add_interval(start, interval, count, zone) == expected


def test_calendar_days_count_a_dst_day_as_one() -> None:
    start = dt.datetime(2027, 3, 27, 9, tzinfo=BERLIN)
    end = dt.datetime(2027, 3, 28, 9, tzinfo=BERLIN)  # 23 hours later
    assert calendar_days(start, end, BERLIN) == 1
