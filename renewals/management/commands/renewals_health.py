"""``manage.py renewals_health``: what needs a person, with an exit status to page on."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from renewals.services.health import (
    DEFAULT_DAYS,
    DEFAULT_LIMIT,
    DEFAULT_STUCK_MINUTES,
    HealthReport,
    iso,
)
from renewals.services.health import health_report as build_report


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(value)
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {number}")
        return number

    return parse


class Command(BaseCommand):
    help = (
        "Report renewals whose required notices are not given, missed notices, deliveries "
        "stuck in the queue, pending gateway syncs and held renewals. Exits 1 when something "
        "needs a person, 0 when all is well: run it from cron or a monitor and page on it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=_at_least(0),
            default=DEFAULT_DAYS,
            help="Check renewals due within this many days (default %(default)s).",
        )
        parser.add_argument(
            "--stuck-minutes",
            type=_at_least(1),
            default=DEFAULT_STUCK_MINUTES,
            help="A delivery queued, a gateway sync pending or a notice overdue for longer "
            "than this needs a person (default %(default)s).",
        )
        parser.add_argument(
            "--limit",
            type=_at_least(1),
            default=DEFAULT_LIMIT,
            help="Rows listed per section (default %(default)s); counts are always complete.",
        )
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print the report as JSON."
        )

    def handle(
        self,
        *args: Any,
        days: int,
        stuck_minutes: int,
        limit: int,
        as_json: bool,
        **options: Any,
    ) -> None:
        report = build_report(timezone.now(), days=days, stuck_minutes=stuck_minutes, limit=limit)
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        else:
            self._write_text(report)
        if report.needs_attention:
            raise CommandError("Renewals need attention.", returncode=1)

    def _write_text(self, report: HealthReport) -> None:
        self.stdout.write(f"Renewals health at {iso(report.checked_at)}")
        for section in report.sections:
            note = "" if section.alert else " (for information)"
            self.stdout.write(f"{section.count:>6}  {section.title}{note}")
        for section in report.sections:
            if not section.rows:
                continue
            self.stdout.write(f"\n{section.title}: {section.count}")
            for row in section.rows:
                cells = (f"{column}={_text(value)}" for column, value in row.items())
                self.stdout.write("  " + " ".join(cells))
            if section.more:
                self.stdout.write(f"  … and {section.more} more")
        if report.needs_attention:
            self.stdout.write(self.style.ERROR("\nNeeds attention."))
        else:
            self.stdout.write(self.style.SUCCESS("\nAll is well."))


def _text(value: object) -> str:
    """A cell as one token: ``-`` for nothing, quoted when it has spaces."""
    if value is None or value == "":
        return "-"
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c.isspace() for c in text) else text
