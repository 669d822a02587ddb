"""A gateway with no processor behind it: for demos, tests, and apps billed elsewhere."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured

from ..periods import add_interval
from .base import Period

if TYPE_CHECKING:
    from ..models import Subscription

logger = logging.getLogger("renewals.gateways")


class LocalGateway:
    """Accepts every operation and logs it; a renewal moves the term on by the renewal
    terms' interval, on the subscriber's calendar.

    The renewals services still record everything and send their signals
    (``auto_renewal_changed``, ``renewal_held``), so an app billed elsewhere (in-app purchases,
    invoices) listens to those and acts on its own billing.
    """

    name = "local"

    def __init__(self, **options: Any) -> None:
        if options:
            raise ImproperlyConfigured(
                "RENEWALS['GATEWAY']['OPTIONS']: LocalGateway takes no options, "
                f"got {sorted(options)}."
            )

    def set_auto_renew(self, subscription: Subscription, enabled: bool) -> None:
        logger.info(
            "Subscription %s: auto-renewal %s.", subscription.pk, "on" if enabled else "off"
        )

    def hold_renewal(self, subscription: Subscription, renewal_at: dt.datetime) -> None:
        logger.info("Subscription %s: renewal at %s held.", subscription.pk, renewal_at.isoformat())

    def release_renewal(self, subscription: Subscription, renewal_at: dt.datetime) -> None:
        logger.info(
            "Subscription %s: renewal at %s released.", subscription.pk, renewal_at.isoformat()
        )

    def renew(self, subscription: Subscription, renewal_at: dt.datetime) -> Period:
        terms = subscription.renewal_terms()
        end = add_interval(renewal_at, terms.interval, terms.interval_count, subscription.zone)
        logger.info(
            "Subscription %s: renewed at %s until %s.",
            subscription.pk,
            renewal_at.isoformat(),
            end.isoformat(),
        )
        return Period(renewal_at, end)

    def check(self) -> list[CheckMessage]:
        return []
