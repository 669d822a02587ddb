"""``manage.py renewals_reconcile``: repair what a crash or an outage left half done."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from renewals.models import Subscription
from renewals.services import sync_pending_gateways


class Command(BaseCommand):
    help = (
        "Tell the billing gateway every auto-renewal change it has not confirmed yet "
        "(subscriptions with gateway_sync_pending). Safe to run at any time, e.g. every few "
        "minutes from cron or a django-q2 schedule."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        pending = Subscription.objects.filter(gateway_sync_pending=True).count()
        synced = sync_pending_gateways()
        self.stdout.write(f"Gateway: {synced} of {pending} pending subscriptions synced.")
        if synced < pending:
            self.stderr.write(
                self.style.WARNING(f"{pending - synced} still pending; see the log for why.")
            )
