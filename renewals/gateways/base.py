"""What the renewals services need from a billing processor."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from django.core.checks import CheckMessage

if TYPE_CHECKING:
    from ..models import Subscription


@runtime_checkable
class BillingGateway(Protocol):
    """A billing processor, seen from the compliance side.

    Implementations raise :class:`renewals.exceptions.GatewayError` when the processor
    refuses or cannot be reached; the services then leave ``gateway_sync_pending`` set and
    the reconcile run tries again.
    """

    #: Stored on each subscription so a project can move processors gradually.
    name: str

    def __init__(self, **options: Any) -> None: ...

    def set_auto_renew(self, subscription: Subscription, enabled: bool) -> None:
        """Make the processor renew (or not renew) at the end of the current term."""

    def hold_renewal(self, subscription: Subscription, renewal_at: dt.datetime) -> None:
        """Keep the renewal at ``renewal_at`` from being charged until released."""

    def release_renewal(self, subscription: Subscription, renewal_at: dt.datetime) -> None:
        """Let a held renewal be charged."""

    def check(self) -> list[CheckMessage]:
        """Configuration problems, reported by the ``renewals`` system check."""
