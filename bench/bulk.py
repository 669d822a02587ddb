"""Rows in bulk for the benchmarks: subscribers, ``cn`` subscriptions and their notices."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.contrib.auth import get_user_model

from notifications.recipients import Recipient
from renewals.models import RenewalNotice, RenewalTerms, Subscription
from renewals.types import User

#: ``NOTIFICATIONS["RECIPIENT_RESOLVER"]`` for :func:`subscribers` (the scripts' own folder
#: is first on ``sys.path``, also in the worker processes they start).
RESOLVER = "bulk.reachable"


def subscribers(count: int, *, with_phone: bool = False) -> list[User]:
    """``count`` new users; with a phone number (in ``first_name``, where :func:`reachable`
    reads it) when asked."""
    user_model = get_user_model()
    start = user_model.objects.count()
    return user_model.objects.bulk_create(
        user_model(
            username=f"bench{start + i}",
            first_name=f"+86138{start + i:08d}" if with_phone else "",
        )
        for i in range(count)
    )


def reachable(user: User) -> Recipient:
    """The recipient resolver of :func:`subscribers`: the phone number in ``first_name``,
    the user's push devices, English."""
    return Recipient(
        user=user,
        phone=user.first_name or None,
        devices=list(user.notification_devices.all()),
        locale="en",
    )


def cn_subscriptions(
    users: Sequence[User], terms: RenewalTerms, now: dt.datetime, renewal: dt.datetime
) -> list[Subscription]:
    """An active, auto-renewing ``cn`` subscription per user, started ``now`` and renewing
    at ``renewal``, in Asia/Shanghai."""
    return Subscription.objects.bulk_create(
        Subscription(
            user=user,
            terms=terms,
            policy="cn",
            status="active",
            auto_renew=True,
            current_period_start=now,
            next_renewal_at=renewal,
            time_zone="Asia/Shanghai",
        )
        for user in users
    )


def cn_reminders(
    subscriptions: Sequence[Subscription], send_at: dt.datetime, **fields: Any
) -> list[RenewalNotice]:
    """The ``cn`` reminder (SMS and push, 7 to 5 days before) of each subscription's next
    renewal, to be sent at ``send_at``; ``fields`` set more of them (e.g. ``status``)."""
    notices = []
    for subscription in subscriptions:
        renewal = subscription.next_renewal_at
        if renewal is None:
            raise ValueError(f"Subscription {subscription.pk} has no renewal to remind of.")
        notices.append(
            RenewalNotice(
                subscription=subscription,
                renewal_at=renewal,
                policy="cn",
                rule_id="renewal-reminder",
                window_opens_at=renewal - dt.timedelta(days=7),
                window_closes_at=renewal - dt.timedelta(days=5),
                send_at=send_at,
                time_zone="Asia/Shanghai",
                channels=["sms", "push"],
                **fields,
            )
        )
    return RenewalNotice.objects.bulk_create(notices)
