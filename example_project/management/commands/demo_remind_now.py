"""Demo only: bring the demo user's next renewals close, and send their reminders now.

A stepping stone to a real time machine. A subscription started today renews in a week or a
month, and its reminder goes out at a daytime hour inside the rule's window; to see one at
once this command, for each trialing or active subscription of the user ``demo`` with
auto-renewal on:

1. moves the next renewal (and the trial's end, when the renewal ends the trial) to 5 days
   and 12 hours from now, recorded in the audit log, and plans its notices as the services
   do (``plan_notices``), so the reminder's window is open now;
2. takes a shortcut no real deployment has: the planned notices' ``send_at`` becomes now;
3. runs the notice sweep (``renewals.tasks.send_due_notices``), as the qcluster would within
   a minute, and prints the messages the database backends stored.

A subscription whose next renewal was already reminded of is left alone, so running it again
sends nothing more.
"""

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from notifications.models import OutboxMessage
from renewals import tasks
from renewals.models import NoticeStatus, RenewalNotice, Status, Subscription
from renewals.services import plan_notices, record_event
from renewals.services.notice_state import notice_reference

#: The next renewal is moved this far ahead: inside the ``cn`` reminder's window (7 to 5 days
#: before the renewal), with half a day left to send it.
LEAD = dt.timedelta(days=5, hours=12)
GIVEN = (NoticeStatus.SENT, NoticeStatus.DELIVERED)


class Command(BaseCommand):
    help = (
        "DEMO ONLY: move the next renewal of each of demo's subscriptions to 5 days 12 hours "
        "from now, send its reminder at once and print the SMS and push stored."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username="demo").first()
        if user is None:
            raise CommandError("No user 'demo': run manage.py demo_setup first.")
        subscriptions = Subscription.objects.filter(
            user=user, status__in=[Status.TRIALING, Status.ACTIVE], auto_renew=True
        ).select_related("terms")
        if not subscriptions.exists():
            self.stdout.write("No subscription with auto-renewal on: subscribe to a plan first.")
            return
        notices: list[RenewalNotice] = []
        for subscription in subscriptions.order_by("pk"):
            if subscription.notices.filter(
                renewal_at=subscription.next_renewal_at, status__in=GIVEN
            ).exists():
                self.stdout.write(f"{subscription}: already reminded of its next renewal.")
                continue
            notices += bring_renewal_close(subscription, timezone.now())
        if not notices:
            return
        tasks.send_due_notices()
        messages = OutboxMessage.objects.filter(
            delivery__reference__in=[notice_reference(notice.pk) for notice in notices]
        ).order_by("pk")
        for message in messages:
            text = f"{message.title}\n  {message.body}" if message.title else message.body
            self.stdout.write(f"{message.get_channel_display()} to {message.recipient}:\n  {text}")
        self.stdout.write(self.style.SUCCESS(f"{len(messages)} message(s) stored: see the admin."))


def bring_renewal_close(subscription: Subscription, now: dt.datetime) -> list[RenewalNotice]:
    """Move the subscription's next renewal to :data:`LEAD` from ``now``, plan its notices and
    make the planned ones due now; return the notices of the renewal."""
    renewal_at = (now + LEAD).replace(microsecond=0)
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        changes = {"next_renewal_at": renewal_at}
        if subscription.trial_ends_at == subscription.next_renewal_at:
            changes["trial_ends_at"] = renewal_at
        record_event(
            "demo_renewal_moved",
            subscription=subscription,
            data={"from": subscription.next_renewal_at, "to": renewal_at},
        )
        Subscription.objects.filter(pk=subscription.pk).update(**changes, updated_at=now)
        notices = plan_notices(subscription)
        RenewalNotice.objects.filter(
            pk__in=[notice.pk for notice in notices], status=NoticeStatus.PLANNED
        ).update(send_at=now, updated_at=now)
    return notices
