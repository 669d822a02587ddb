"""Demo only: ``manage.py demo_time_machine [--user NAME]``, the time machine's button from a
terminal. Moves the demo's clock forward to the next reminder of the user's subscriptions
(default: ``demo``), runs the notice sweep and prints the SMS and push it stored."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.timesince import timeuntil

from example_project import demo_clock
from example_project.time_machine import as_text, jump_to_next_reminder, messages_of


class Command(BaseCommand):
    help = (
        "DEMO ONLY: move the demo's clock to the next reminder of the user's subscriptions, "
        "send it at once and print the SMS and push stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", default="demo", help="Whose reminder (default: demo).")

    def handle(self, *args: Any, user: str, **options: Any) -> None:
        if demo_clock.installed() is None:
            raise CommandError(
                "The demo clock is off: run this with the example's settings "
                "(DEMO_TIME_MACHINE = True)."
            )
        found = get_user_model().objects.filter(username=user).first()
        if found is None:
            raise CommandError(f"No user {user!r}: run manage.py demo_setup, or sign up.")
        jump = jump_to_next_reminder(found)
        if jump.notice is None:
            self.stdout.write(
                f"No reminder is planned for {user}: subscribe to a plan, with auto-renewal "
                "on, first."
            )
            return
        subscription = jump.notice.subscription
        when = (
            f"{subscription.local(jump.notice.send_at):%Y-%m-%d %H:%M} ({subscription.time_zone})"
        )
        if jump.moved_by:
            now = demo_clock.real_now()
            ahead = timeuntil(now + jump.moved_by, now)
            self.stdout.write(f"The demo clock moved forward {ahead}, to {when}.")
        else:
            self.stdout.write(f"The reminder was due already ({when}).")
        service, status = subscription.terms.service_name, jump.notice.get_status_display()
        self.stdout.write(f"The reminder of {service}: {status}.")
        messages = list(messages_of(jump.notice))
        for message in messages:
            self.stdout.write(as_text(message))
        self.stdout.write(
            self.style.SUCCESS(f"{len(messages)} message(s) stored: see the inbox page.")
        )
