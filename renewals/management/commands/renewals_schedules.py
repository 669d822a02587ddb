"""``manage.py renewals_schedules``: create or update the package's django-q2 schedules."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django_q.conf import Conf

from renewals.schedules import upsert_schedules


class Command(BaseCommand):
    help = (
        "Create or update the django-q2 schedules of the notice sweep, the renewals, the "
        "delivery sweep, audit checkpoints, gateway sync repair and cancellation "
        "confirmations, by name. Idempotent: run it on every deploy."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Change nothing; exit 1 if any schedule would be created, updated or removed.",
        )

    def handle(self, *args: Any, check: bool, **options: Any) -> None:
        changes = upsert_schedules(timezone.now(), dry_run=check)
        for change in changes:
            action = f"would be {change.action}" if check and change.changed else change.action
            details = f" ({'; '.join(change.details)})" if change.details else ""
            self.stdout.write(f"{change.name}: {action}{details}")
        if Conf.CATCH_UP:
            self.stderr.write(
                self.style.WARNING(
                    "Q_CLUSTER['catch_up'] is on: after an outage the scheduler runs each "
                    "schedule once per missed interval. Set it to False."
                )
            )
        pending = sum(change.changed for change in changes)
        if check and pending:
            raise CommandError(
                f"{pending} schedule(s) out of date; run manage.py renewals_schedules.",
                returncode=1,
            )
