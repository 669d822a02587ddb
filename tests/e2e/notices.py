"""Due renewal notices to send, and the check that each went out exactly once per channel."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from django.test import override_settings
from django.utils import timezone
from freezegun import freeze_time

from notifications.models import Delivery, Device, OutboxMessage
from renewals.models import NoticeStatus, RenewalNotice
from renewals.services import plan_notices
from tests.renewals.factories import make_subscription, make_terms

from . import config

CHANNELS = ("sms", "push")
GIVEN = (NoticeStatus.SENT, NoticeStatus.DELIVERED)


def make_due_notices(count: int) -> list[int]:
    """Plan the reminders of ``count`` ``cn`` subscriptions renewing in 5.5 days, whose users
    each have a push device; return the notice ids.

    Planned at the top of this hour, so that each is due now in real time: freezegun does
    not reach the qcluster subprocess.
    """
    renewal_at = timezone.now() + dt.timedelta(days=5, hours=12)
    top_of_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    terms = make_terms()
    ids = []
    with override_settings(RENEWALS=config.renewals()), freeze_time(top_of_hour):
        for _ in range(count):
            subscription = make_subscription(terms=terms, next_renewal_at=renewal_at)
            Device.objects.create(
                user=subscription.user,
                platform=Device.Platform.ANDROID,
                provider="fcm",
                token=f"e2e-token-{subscription.pk}",
            )
            ids += [notice.pk for notice in plan_notices(subscription)]
    assert len(ids) == count
    assert not RenewalNotice.objects.filter(pk__in=ids).exclude(
        status=NoticeStatus.PLANNED, send_at__lte=timezone.now()
    )
    return ids


def count_given(ids: list[int]) -> int:
    return RenewalNotice.objects.filter(pk__in=ids, status__in=GIVEN).count()


def assert_given_once(ids: list[int]) -> None:
    """Every notice is given, with one accepted delivery per channel and one message each."""
    statuses = Counter(RenewalNotice.objects.filter(pk__in=ids).values_list("status", flat=True))
    assert statuses == {NoticeStatus.SENT: len(ids)}

    references = [f"renewals.notice:{pk}" for pk in ids]
    deliveries = Delivery.objects.filter(reference__in=references)
    per_channel = Counter(deliveries.values_list("reference", "channel"))
    assert set(per_channel) == {(ref, channel) for ref in references for channel in CHANNELS}
    assert set(per_channel.values()) == {1}
    assert set(deliveries.values_list("status", flat=True)) == {Delivery.Status.SENT}

    messages = Counter(
        OutboxMessage.objects.filter(delivery__in=deliveries).values_list("delivery", flat=True)
    )
    assert len(messages) == len(per_channel)
    assert set(messages.values()) == {1}
    assert OutboxMessage.objects.count() == len(per_channel)
    sms = OutboxMessage.objects.filter(channel="sms").values_list("body", flat=True)
    assert all("https://example.test/" in body for body in sms)
