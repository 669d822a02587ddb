"""``manage.py renewals_export_evidence <subscription id>``: one subscription's evidence."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from renewals.models import Subscription
from renewals.services import evidence_pack


class Command(BaseCommand):
    help = (
        "Export the evidence pack of one subscription as JSON: terms shown, consent evidence, "
        "notices and their outcomes, cancellation, each row's binding to the audit log, and "
        "the audit entries with the newest checkpoint's proof of the chain's head (a Merkle "
        "path that names no other subscription)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subscription", type=int, help="The subscription's id.")
        parser.add_argument("-o", "--output", help="Write to this file instead of standard output.")

    def handle(self, *args: Any, subscription: int, output: str | None, **options: Any) -> None:
        try:
            instance = Subscription.objects.get(pk=subscription)
        except Subscription.DoesNotExist:
            raise CommandError(f"No subscription with id {subscription}.") from None
        text = json.dumps(evidence_pack(instance), indent=2, ensure_ascii=False, sort_keys=True)
        if output:
            with open(output, "w", encoding="utf-8") as stream:
                stream.write(text + "\n")
            self.stderr.write(f"Wrote the evidence of subscription {subscription} to {output}.")
        else:
            self.stdout.write(text)
