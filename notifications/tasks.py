"""django-q2 entry points of the ``notifications`` app."""

from __future__ import annotations

from django.utils import timezone

from .status import apply_unmatched_receipts, expire_stale


def sweep_deliveries() -> dict[str, int]:
    """Apply the stored receipts whose delivery has appeared, then expire sent deliveries
    whose receipt never came (schedule it, e.g. every 10 minutes); return the counts."""
    now = timezone.now()
    applied, dropped = apply_unmatched_receipts(now)
    return {"receipts_applied": applied, "receipts_dropped": dropped, "expired": expire_stale(now)}
