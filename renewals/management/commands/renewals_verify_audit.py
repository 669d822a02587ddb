"""``manage.py renewals_verify_audit``: recompute the audit log's hash chains."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from renewals.services import create_checkpoint, verify_audit


class Command(BaseCommand):
    help = (
        "Verify every audit chain and checkpoint. Exits non-zero and names the first row "
        "that does not verify."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint",
            action="store_true",
            help="After a clean verification, record a checkpoint of every chain's head.",
        )

    def handle(self, *args: Any, checkpoint: bool, **options: Any) -> None:
        report = verify_audit()
        if report.problem is not None:
            raise CommandError(f"Audit log is broken. {report.problem}", returncode=1)
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit log verified: {report.events} events in {report.chains} chains, "
                f"{report.checkpoints} checkpoints."
            )
        )
        if checkpoint:
            made = create_checkpoint()
            self.stdout.write(
                f"Recorded checkpoint #{made.sequence} over {len(made.heads)} chains."
            )
