"""Offers a rule pack can never let renew lawfully: the renewals come too soon for a notice.

Pure functions over a pack and an offer's interval and trial; the system check
``renewals.W002`` (:func:`renewals.checks.check_offers`) applies them to the terms in the
database.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ..periods import add_interval, calendar_days
from .models import NoticeRule, RenewalContext, RulePack, ShortFirstTerm

#: The first day of each month of a common year: the terms starting on one of them include
#: the shortest run of months, and of years, that an interval can make.
_UTC = ZoneInfo("UTC")
_STARTS = tuple(dt.datetime(2027, month, 1, tzinfo=_UTC) for month in range(1, 13))


def shortest_term_days(interval: str, count: int) -> int:
    """The fewest calendar days a term of ``count`` times ``interval`` can last (28 for one
    month)."""
    return min(
        calendar_days(start, add_interval(start, interval, count, _UTC), _UTC) for start in _STARTS
    )


def never_compliant(
    pack: RulePack, interval: str, interval_count: int, trial_days: int, *, margin_hours: int
) -> list[str]:
    """Why an offer of this interval and free trial can never renew lawfully under ``pack``:
    each renewal comes so soon after the last (or, where the pack refuses a first renewal too
    soon for its notice, the trial ends so soon after the start) that a notice due before it
    cannot go out with ``margin_hours`` to spare. Counted in whole days, as elapsed days.
    """
    term_days = shortest_term_days(interval, interval_count)
    renewal = RenewalContext(term_days, False, 0, False, False)
    problems = [
        f"renewals come every {term_days} days, too soon for notice {rule.id!r}, due "
        f"{rule.latest_days_before} days before each"
        for rule in _too_soon(pack.notices_for(renewal), term_days, margin_hours)
    ]
    if trial_days and pack.short_first_term is ShortFirstTerm.REFUSE:
        trial_end = RenewalContext(term_days, True, trial_days, False, False)
        problems += [
            f"its free trial of {trial_days} days ends too soon for notice {rule.id!r}, due "
            f"{rule.latest_days_before} days before the first renewal, so subscribe refuses "
            "it (short_first_term = 'refuse')"
            for rule in _too_soon(pack.notices_for(trial_end), trial_days, margin_hours)
        ]
    return problems


def _too_soon(
    rules: tuple[NoticeRule, ...], days: int, margin_hours: int
) -> tuple[NoticeRule, ...]:
    """The ``rules`` whose notice cannot go out ``days`` before the renewal it announces,
    with ``margin_hours`` to spare before its window closes."""
    return tuple(
        rule
        for rule in rules
        if dt.timedelta(days=days - rule.latest_days_before) < dt.timedelta(hours=margin_hours)
    )
