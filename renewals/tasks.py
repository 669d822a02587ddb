"""django-q2 entry points: module-level functions that take ids or nothing, each a thin call
of a service. ``renewals_schedules`` makes the periodic ones run."""

from __future__ import annotations

from dataclasses import asdict

from .services import audit, cancellation, confirmations, declarations, renewing, sweep


def send_due_notices() -> dict[str, int]:
    """Send the renewal notices that are due (every minute); return the counts."""
    return asdict(sweep.send_due_notices())


def run_due_renewals() -> dict[str, int]:
    """Ask the renewal gate about every renewal that is due, and act on it (every few
    minutes); return the counts."""
    return asdict(renewing.run_due_renewals())


def send_pending_confirmations() -> int:
    """Send the confirmations (of a cancel, a resume, a declaration, a withdrawal, and the
    acknowledgment of a sign-up) a lost queue message left unsent."""
    return confirmations.send_pending_confirmations()


def apply_scheduled_cancellations() -> int:
    """Put into effect the cancellations declared for a later date once the current term
    includes it (hourly); return how many."""
    return declarations.apply_scheduled_cancellations()


def sync_pending_gateways() -> int:
    """Retry the gateway changes the gateway has not confirmed."""
    return cancellation.sync_pending_gateways()


def create_checkpoint() -> int:
    """Add an audit checkpoint that commits to every chain's head (hourly); return its id."""
    return audit.create_checkpoint().pk
