"""``manage.py renewals_stripe_reprocess``: apply stored Stripe events that did not apply."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from renewals.exceptions import WebhookEventFailed
from renewals.models import StripeEvent
from renewals.services.stripe_events import failed_events, needs_processing, reprocess_event


class Command(BaseCommand):
    help = (
        "Apply stored Stripe events again: the ones named (those that failed, or were about "
        "a subscription not here then), or with --failed every event whose processing "
        "failed, oldest first. Each event is applied in its own transaction, at most once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("event_ids", nargs="*", metavar="EVENT_ID", help="e.g. evt_1Q...")
        parser.add_argument(
            "--failed", action="store_true", help="Every stored event not processed yet."
        )

    def handle(self, *args: Any, event_ids: list[str], failed: bool, **options: Any) -> None:
        if failed and event_ids:
            raise CommandError("Name events, or pass --failed; not both.")
        if failed:
            events = list(failed_events())
        elif event_ids:
            events = [self._stored(event_id) for event_id in event_ids]
        else:
            raise CommandError("Name events, or pass --failed.")
        still_failing = sum(not self._reprocess(event) for event in events)
        if failed:
            self.stdout.write(
                f"{len(events) - still_failing} of {len(events)} failed events applied."
            )
        if still_failing:
            raise CommandError(
                f"{still_failing} of {len(events)} {'failed ' if failed else ''}events still "
                "fail; each is kept with its error."
            )

    def _stored(self, event_id: str) -> StripeEvent:
        event = StripeEvent.objects.filter(event_id=event_id).first()
        if event is None:
            raise CommandError(f"No stored Stripe event {event_id}.")
        return event

    def _reprocess(self, event: StripeEvent) -> bool:
        """Apply ``event``, saying what became of it; ``False`` if it failed again."""
        name = f"{event.event_id} ({event.type})"
        if not needs_processing(event):
            self.stdout.write(f"{name}: processed already ({event.outcome})")
            return True
        try:
            event = reprocess_event(event)
        except WebhookEventFailed as failure:
            self.stderr.write(f"{name}: {failure.event.error}")
            return False
        self.stdout.write(f"{name}: {event.outcome}")
        return True
