"""Calendar arithmetic for billing periods, in the subscriber's own time zone."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from .models import RenewalTerms


def add_interval(start: dt.datetime, interval: str, count: int, zone: ZoneInfo) -> dt.datetime:
    """``start`` moved on by ``count`` intervals of the local calendar, as aware UTC.

    Months and years keep the local wall-clock time and clamp the day to the month's end
    (Jan 31 + 1 month = Feb 28/29), as card processors do.
    """
    local = start.astimezone(zone)
    if interval in ("day", "week"):
        days = count * (7 if interval == "week" else 1)
        moved = (local.replace(tzinfo=None) + dt.timedelta(days=days)).replace(tzinfo=zone)
    elif interval in ("month", "year"):
        months = count * (12 if interval == "year" else 1)
        index = local.month - 1 + months
        year, month = local.year + index // 12, index % 12 + 1
        day = min(local.day, calendar.monthrange(year, month)[1])
        moved = local.replace(year=year, month=month, day=day)
    else:
        raise ValueError(f"Unknown billing interval {interval!r}")
    return moved.astimezone(dt.UTC)


def calendar_days(start: dt.datetime, end: dt.datetime, zone: ZoneInfo) -> int:
    """Whole local calendar days from ``start`` to ``end`` (a DST day still counts as one)."""
    return (end.astimezone(zone).date() - start.astimezone(zone).date()).days


def first_renewal(
    terms: RenewalTerms, start: dt.datetime, zone: ZoneInfo, *, trial: bool = True
) -> dt.datetime:
    """When a subscription to ``terms`` starting at ``start`` first renews: the trial's end,
    or one term later (also when ``trial`` is false: started without the terms' trial)."""
    if trial and terms.trial_days:
        return add_interval(start, "day", terms.trial_days, zone)
    return add_interval(start, terms.interval, terms.interval_count, zone)
