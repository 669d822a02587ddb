"""django-q2 entry points of the ``notifications`` app."""

from __future__ import annotations

from .status import expire_stale


def expire_stale_deliveries() -> int:
    """Expire sent deliveries whose receipt never came (schedule it, e.g. hourly)."""
    return expire_stale()
