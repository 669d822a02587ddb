"""``manage.py renewals_plan``: plan the notices of many subscriptions at once."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from renewals.exceptions import UnknownPolicy
from renewals.policies import get_pack
from renewals.services.batch_planning import DEFAULT_BATCH_SIZE, plan_all


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Plan the renewal notices of every auto-renewing subscription, as each one's own "
        "planning would: after adopting the package, or after a rule pack changed. Withdraws "
        "notices the rules no longer require. Idempotent: running it again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--all", action="store_true", help="Every subscription.")
        which.add_argument(
            "--policy", metavar="CODE", help="Only the subscriptions of this rule pack."
        )
        parser.add_argument(
            "--batch-size",
            type=positive,
            default=DEFAULT_BATCH_SIZE,
            help=f"Subscriptions per transaction (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--workers",
            type=positive,
            default=2,
            help="Chunks planned side by side, each on its own database connection, so one "
            "computes while the database writes another (default 2; SQLite runs one).",
        )

    def handle(
        self, *args: Any, policy: str | None, batch_size: int, workers: int, **options: Any
    ) -> None:
        if policy is not None:
            try:
                get_pack(policy)
            except UnknownPolicy as exc:
                raise CommandError(str(exc), returncode=2) from None
        started = time.monotonic()
        totals = plan_all(policy=policy, batch_size=batch_size, workers=workers)
        elapsed = time.monotonic() - started
        scope = "all rule packs" if policy is None else f"rule pack {policy!r}"
        self.stdout.write(
            self.style.SUCCESS(
                f"Planned {totals.subscriptions} auto-renewing subscriptions of {scope} in "
                f"{totals.chunks} chunks ({elapsed:.1f} s): {totals.planned} notices planned, "
                f"{totals.replanned} planned afresh, {totals.withdrawn} withdrawn."
            )
        )
