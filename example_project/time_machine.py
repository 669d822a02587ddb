"""The demo's time machine: move the demo's clock to the moment the next reminder is planned
for, and run the notice sweep at once, so the reminder is in the inbox a moment later.

The clock is :mod:`example_project.demo_clock`: nothing stored is rewritten, the reminder
goes out at the time it was planned for (inside its rule's window, a few days before the
renewal), and each move is recorded in the audit log's system chain (``demo_clock_moved``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.utils import timezone

from notifications.models import OutboxMessage
from notifications.types import User
from renewals import tasks
from renewals.models import LIVE_STATUSES, PENDING_NOTICE_STATUSES, RenewalNotice
from renewals.services import record_event
from renewals.services.notice_state import notice_reference

from . import demo_clock


@dataclass(frozen=True)
class Jump:
    """What :func:`jump_to_next_reminder` did."""

    #: The reminder the clock moved to, as the sweep left it; ``None``: none is planned.
    notice: RenewalNotice | None
    #: How far the clock moved (zero when the reminder was due already).
    moved_by: dt.timedelta
    #: The counts of the notice sweep (``renewals.tasks.send_due_notices``).
    sweep: dict[str, int]


def next_reminder(user: User) -> RenewalNotice | None:
    """The next reminder still to go out for one of ``user``'s auto-renewing subscriptions
    (anyone's, for staff)."""
    notices = RenewalNotice.objects.filter(
        status__in=PENDING_NOTICE_STATUSES,
        window_closes_at__gte=timezone.now(),
        subscription__auto_renew=True,
        subscription__status__in=LIVE_STATUSES,
    )
    if not user.is_staff:
        notices = notices.filter(subscription__user=user)
    return notices.select_related("subscription__terms").order_by("send_at", "pk").first()


def jump_to_next_reminder(user: User) -> Jump:
    """Move the demo's clock forward to the send time of :func:`next_reminder` (not at all if
    it is due already), then run the notice sweep."""
    clock = demo_clock.installed()
    if clock is None:
        raise ImproperlyConfigured(
            "The time machine needs the demo clock: set DEMO_TIME_MACHINE = True and "
            "DEMO_CLOCK_FILE in the settings."
        )
    notice = next_reminder(user)
    moved_by = clock.advance_to(notice.send_at) if notice is not None else dt.timedelta(0)
    if moved_by:
        record_event(
            "demo_clock_moved",
            actor=user,
            data={"to": clock.now(), "by_seconds": moved_by.total_seconds()},
        )
    sweep = tasks.send_due_notices()
    if notice is not None:
        notice.refresh_from_db()
    return Jump(notice=notice, moved_by=moved_by, sweep=sweep)


def messages_of(notice: RenewalNotice) -> QuerySet[OutboxMessage]:
    """The messages of ``notice`` that the database backends stored, in the order sent."""
    return OutboxMessage.objects.filter(delivery__reference=notice_reference(notice.pk)).order_by(
        "pk"
    )


def as_text(message: OutboxMessage) -> str:
    """``message`` as a terminal shows it: channel and (masked) recipient, then its lines."""
    lines = [message.title, message.body, message.url and f"opens {message.url}"]
    text = "".join(f"\n  {line}" for line in lines if line)
    return f"{message.get_channel_display()} to {message.recipient}:{text}"
