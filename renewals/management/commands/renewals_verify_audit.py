"""``manage.py renewals_verify_audit``: recompute the audit log's hash chains."""

from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from renewals.models import AuditCheckpoint
from renewals.services import create_checkpoint, verify_audit

_ANCHOR = re.compile(r"^(?P<sequence>\d+):(?P<hash>[0-9a-f]{64})$")


class Command(BaseCommand):
    help = (
        "Verify every audit chain and checkpoint. Exits non-zero and names the first row "
        "that does not verify."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint",
            action="store_true",
            help="After a clean verification, record a checkpoint of every chain's head and "
            "print its hash, to keep outside the database.",
        )
        parser.add_argument(
            "--expect",
            metavar="SEQUENCE:HASH",
            action="append",
            default=[],
            help="A checkpoint hash kept outside the database (as printed by --checkpoint); "
            "fails if that checkpoint is gone or differs. Repeatable.",
        )

    def handle(self, *args: Any, checkpoint: bool, expect: list[str], **options: Any) -> None:
        anchors = [self._parse_anchor(value) for value in expect]
        report = verify_audit()
        if report.problem is not None:
            raise CommandError(f"Audit log is broken. {report.problem}", returncode=1)
        for sequence, digest in anchors:
            stored = AuditCheckpoint.objects.filter(sequence=sequence).first()
            if stored is None or stored.hash != digest:
                found = "is gone" if stored is None else f"has hash {stored.hash}"
                raise CommandError(
                    f"Audit log was rewritten: checkpoint #{sequence} {found}, "
                    f"but {digest} was recorded.",
                    returncode=1,
                )
        self.stdout.write(
            self.style.SUCCESS(
                f"Audit log verified: {report.events} events in {report.chains} chains, "
                f"{report.checkpoints} checkpoints"
                + (f", {len(anchors)} matching the recorded hashes." if anchors else ".")
            )
        )
        if checkpoint:
            made = create_checkpoint()
            self.stdout.write(
                f"Recorded checkpoint #{made.sequence} over {len(made.heads)} chains: "
                f"{made.sequence}:{made.hash}"
            )

    def _parse_anchor(self, value: str) -> tuple[int, str]:
        match = _ANCHOR.match(value)
        if match is None:
            raise CommandError(
                f"--expect {value!r}: give SEQUENCE:HASH, e.g. 12:<64 hex digits>.", returncode=2
            )
        return int(match["sequence"]), match["hash"]
