"""What the renewals services need from a billing processor."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from django.core.checks import CheckMessage

if TYPE_CHECKING:
    from ..models import Subscription


@dataclass(frozen=True)
class Period:
    """A term the processor bills: it started at ``start`` and renews at ``end``."""

    start: dt.datetime
    end: dt.datetime


@runtime_checkable
class BillingGateway(Protocol):
    """A billing processor, seen from the compliance side.

    Implementations raise :class:`renewals.exceptions.GatewayError` when the processor
    refuses or cannot be reached. Cancellation tells the gateway after its own commit and
    leaves ``gateway_sync_pending`` set until the call succeeds; the renewal run calls
    ``hold_renewal``, ``release_renewal`` and ``renew`` while it holds the subscription's row
    lock, and a failure rolls its decision back for the next run to take again. Either way a
    call may be repeated, so each must be idempotent for the same subscription and time.

    At a renewal the gate allows, the run calls ``release_renewal`` (if the gate held it
    before) and then ``renew``, which returns the new term. :class:`~.local.LocalGateway`
    computes it from the renewal terms; a processor lets its renewal invoice go (Stripe:
    releases or finalizes the draft) and returns the period it now reports, and its webhooks
    keep the subscription's period current afterwards.
    """

    #: Stored on each subscription (``Subscription.gateway``) so its calls go to the processor
    #: that bills it, also after a project moves new subscriptions to another one.
    name: str

    def __init__(self, **options: Any) -> None: ...

    def set_auto_renew(self, subscription: Subscription, enabled: bool) -> None:
        """Make the processor renew (or not renew) at the end of the current term.

        Switching it off while a renewal is held (``subscription.held_renewal_at``) drops that
        renewal: it is never charged.
        """

    def hold_renewal(self, subscription: Subscription, renewal_at: dt.datetime) -> None:
        """Keep the renewal at ``renewal_at`` from being charged until released."""

    def release_renewal(self, subscription: Subscription, renewal_at: dt.datetime) -> None:
        """Let a held renewal be charged (``renew`` follows)."""

    def renew(self, subscription: Subscription, renewal_at: dt.datetime) -> Period:
        """Charge the renewal at ``renewal_at``, which the gate allowed; return the new term."""

    def check(self) -> list[CheckMessage]:
        """Configuration problems, reported by the ``renewals`` system check."""
