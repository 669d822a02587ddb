"""``manage.py renewals_reconcile``: repair what a crash or an outage left half done."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from renewals.exceptions import GatewayError
from renewals.models import Subscription
from renewals.services import sync_pending_gateways
from renewals.services.stripe_reconcile import reconcile_stripe


def hours(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 720:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Tell the billing gateway every auto-renewal change it has not confirmed yet "
        "(subscriptions with gateway_sync_pending). Safe to run at any time, e.g. every few "
        "minutes from cron or a django-q2 schedule. With --stripe, also apply the Stripe "
        "events of the last --since-hours that were not processed here, and bring every "
        "subscription in line with Stripe's (a full pass: run it daily, say)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stripe",
            action="store_true",
            help="Repair what Stripe's webhooks did not bring: missed events, then state.",
        )
        parser.add_argument(
            "--since-hours",
            type=hours,
            default=72,
            help="With --stripe: events created this many hours back, 1 to 720 (default 72, "
            "as long as Stripe retries a webhook).",
        )

    def handle(self, *args: Any, stripe: bool, since_hours: int, **options: Any) -> None:
        pending = Subscription.objects.filter(gateway_sync_pending=True).count()
        synced = sync_pending_gateways()
        self.stdout.write(f"Gateway: {synced} of {pending} pending subscriptions synced.")
        if synced < pending:
            self.stderr.write(
                self.style.WARNING(f"{pending - synced} still pending; see the log for why.")
            )
        if stripe:
            self._reconcile_stripe(timezone.now() - dt.timedelta(hours=since_hours))

    def _reconcile_stripe(self, since: dt.datetime) -> None:
        try:
            repairs = reconcile_stripe(since=since)
        except GatewayError as exc:
            raise CommandError(f"The Stripe repair stopped. {exc}") from exc
        self.stdout.write(
            f"Stripe: {repairs.events_applied} missed events applied, "
            f"{repairs.subscriptions_repaired} subscriptions repaired, "
            f"{repairs.subscriptions_linked} linked."
        )
        if repairs.events_failed:
            self.stderr.write(
                self.style.WARNING(
                    f"{repairs.events_failed} events failed; see the log, then "
                    "renewals_stripe_reprocess --failed."
                )
            )
        if repairs.not_here:
            self.stderr.write(
                self.style.WARNING(
                    f"{len(repairs.not_here)} Stripe subscriptions are not here (import them "
                    "with renewals_stripe_import): " + ", ".join(repairs.not_here)
                )
            )
