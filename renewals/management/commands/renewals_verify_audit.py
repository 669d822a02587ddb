"""``manage.py renewals_verify_audit``: recompute the audit log and the evidence it binds."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from renewals.services import AuditReport, CheckpointAnchor, create_checkpoint, verify_audit


class Command(BaseCommand):
    help = (
        "Verify every audit chain, head, checkpoint and signature, and every consent, terms "
        "and notice row against the audit event that bound it. Exits non-zero and names the "
        "first row that does not verify."
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
        try:
            anchors = [CheckpointAnchor.parse(value) for value in expect]
        except ValueError as error:
            raise CommandError(f"--expect {error}", returncode=2) from None
        report = verify_audit(expect=anchors)
        if report.problem is not None:
            raise CommandError(f"Audit log is broken. {report.problem}", returncode=1)
        self.stdout.write(self.style.SUCCESS(_summary(report)))
        for warning in _warnings(report):
            self.stderr.write(self.style.WARNING(warning))
        if checkpoint:
            made = create_checkpoint()
            self.stdout.write(
                f"Recorded checkpoint #{made.sequence} over {len(made.heads)} chains: "
                f"{CheckpointAnchor.of(made)}"
            )


def _summary(report: AuditReport) -> str:
    summary = (
        f"Audit log verified: {report.events} events in {report.chains} chains, "
        f"{report.checkpoints} checkpoints, {report.rows} evidence rows"
    )
    if report.keyed:
        summary += ", signatures checked"
    if report.anchors:
        summary += f", {report.anchors} matching the recorded hashes"
    return summary + "."


def _warnings(report: AuditReport) -> list[str]:
    warnings = []
    if report.signed and not report.keyed:
        warnings.append(
            "The log is signed with an audit key, but RENEWALS['AUDIT_KEY'] is not set here: "
            "the signatures were not checked."
        )
    if report.keyed and report.key_start is None:
        warnings.append(
            "RENEWALS['AUDIT_KEY'] is set, but no checkpoint is signed with it yet: run "
            "--checkpoint and keep the hash it prints. If a signed checkpoint was made "
            "before, the log's signatures were stripped."
        )
    if report.legacy_rows:
        warnings.append(
            f"{report.legacy_rows} evidence rows written before rows were bound were not "
            "checked field by field."
        )
    return warnings
