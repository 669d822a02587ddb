"""django-q2 entry points: module-level functions that take ids or nothing, each a thin call
of a service. ``renewals_schedules`` makes the periodic ones run."""

from __future__ import annotations

from dataclasses import asdict

from .services.sweep import send_due_notices as _send_due_notices


def send_due_notices() -> dict[str, int]:
    """Send the renewal notices that are due (schedule it every minute); return the counts."""
    return asdict(_send_due_notices())
