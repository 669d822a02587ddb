"""``manage.py renewals_stripe_import``: bring the subscriptions Stripe already bills in."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from renewals.conf import renewals_settings
from renewals.exceptions import GatewayError, UnknownPolicy
from renewals.models.subscription import validate_time_zone
from renewals.policies import get_pack
from renewals.services.stripe_import import (
    ImportOptions,
    ImportTotals,
    import_stripe_subscriptions,
    last_imported_id,
)


def page_size(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 100:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = (
        "Import the subscriptions Stripe bills that have not ended: terms from their price, "
        "the next renewal from their items, notices planned. No consent is on record for "
        "them, so each renewal is held until the user consents. Idempotent; --resume goes on "
        "after the subscription the last run imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        start = parser.add_mutually_exclusive_group()
        start.add_argument(
            "--resume",
            action="store_true",
            help="Start after the subscription imported last (a run that stopped).",
        )
        start.add_argument(
            "--starting-after", metavar="SUB_ID", help="Start after this Stripe subscription."
        )
        parser.add_argument(
            "--page-size",
            type=page_size,
            default=100,
            help="Subscriptions per Stripe request, 1 to 100 (default 100).",
        )
        parser.add_argument(
            "--policy", metavar="CODE", help="Rule pack of every import (default: the resolver's)."
        )
        parser.add_argument(
            "--time-zone",
            metavar="ZONE",
            help="IANA zone of every import (default: RENEWALS['DEFAULT_TIME_ZONE'] or TIME_ZONE).",
        )
        parser.add_argument(
            "--locale",
            default=settings.LANGUAGE_CODE,
            help="Language of terms made for a price no terms bill yet (default LANGUAGE_CODE).",
        )
        parser.add_argument("--renewal-wording", default="", help="Renewal sentence of such terms.")
        parser.add_argument(
            "--cancellation-method", default="", help="How-to-cancel sentence of such terms."
        )
        parser.add_argument(
            "--user-resolver",
            metavar="DOTTED_PATH",
            help="callable(customer: dict) -> user or None (default: the customer's "
            "renewals_user metadata, else its email).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        import_options = self._import_options(options)
        starting_after = last_imported_id() if options["resume"] else options["starting_after"]
        if options["resume"] and starting_after is None:
            raise CommandError("Nothing was imported before; run without --resume.")
        try:
            totals = import_stripe_subscriptions(
                import_options,
                starting_after=starting_after,
                page_size=options["page_size"],
                on_page=self._progress,
            )
        except GatewayError as exc:
            raise CommandError(
                f"{exc} Run again with --resume to go on after the last import."
            ) from exc
        self.stdout.write(
            f"Imported {totals.imported}, linked {totals.linked}, already here "
            f"{totals.existing}, not live {totals.not_live}, without a user "
            f"{len(totals.no_user)}, not representable {len(totals.unsupported)}."
        )
        if totals.no_user:
            self.stderr.write(
                self.style.WARNING(
                    "No user found for the customers of: " + ", ".join(totals.no_user)
                )
            )
        for stripe_id, problem in totals.unsupported.items():
            self.stderr.write(self.style.WARNING(f"Not imported: {stripe_id}: {problem}"))

    def _import_options(self, options: dict[str, Any]) -> ImportOptions:
        time_zone = options["time_zone"] or renewals_settings.time_zone_name
        resolver = options["user_resolver"]
        try:
            if options["policy"]:
                get_pack(options["policy"])
            validate_time_zone(time_zone)
            user_for = import_string(resolver) if resolver else None
        except UnknownPolicy as exc:
            raise CommandError(str(exc), returncode=2) from None
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages), returncode=2) from None
        except ImportError as exc:
            raise CommandError(
                f"--user-resolver {resolver!r} cannot be imported: {exc}", returncode=2
            ) from None
        return ImportOptions(
            locale=options["locale"],
            time_zone=time_zone,
            renewal_wording=options["renewal_wording"],
            cancellation_method=options["cancellation_method"],
            policy=options["policy"],
            user_for=user_for,
        )

    def _progress(self, totals: ImportTotals) -> None:
        self.stdout.write(
            f"… up to {totals.last_id}: {totals.imported} imported, {totals.existing} already here."
        )
