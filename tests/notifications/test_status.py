import datetime as dt
import logging

import pytest
from django.utils import timezone
from freezegun import freeze_time

from notifications.backends import locmem
from notifications.messages import Receipt
from notifications.models import Delivery
from notifications.signals import delivery_updated
from notifications.status import apply_receipt, expire_stale, record_status
from notifications.tasks import expire_stale_deliveries

from .helpers import configure

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def make_delivery(key="k:sms", alias="sms", **fields):
    values = {
        "channel": "sms",
        "backend_alias": alias,
        "recipient": "+86 138****5678",
        "recipient_key": "user:1",
        "template_key": "tests.greeting",
        "locale": "en",
        "dispatch_key": key.split(":")[0],
        "idempotency_key": key,
        "queued_at": NOW,
        "provider_message_id": f"id-{key}",
    }
    return Delivery.objects.create(**(values | fields))


@pytest.fixture
def signals():
    received = []

    def receiver(sender, delivery, old_status, new_status, **kwargs):
        received.append((delivery.pk, old_status, new_status))

    delivery_updated.connect(receiver)
    yield received
    delivery_updated.disconnect(receiver)


def test_record_status_sets_time_and_signals(signals):
    delivery = make_delivery()
    assert record_status(delivery, "sent", at=NOW)
    assert record_status(delivery, "undelivered", error_code="E1", error_message="off")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.sent_at, delivery.error_code) == ("undelivered", NOW, "E1")
    assert delivery.undelivered_at is not None
    assert signals == [(delivery.pk, "queued", "sent"), (delivery.pk, "sent", "undelivered")]


def test_record_status_locked_saves_other_fields_in_one_update(django_assert_num_queries, signals):
    delivery = make_delivery()
    delivery.attempts = 1
    with django_assert_num_queries(1):
        assert record_status(delivery, "sent", at=NOW, update_fields=["attempts"], locked=True)
    with django_assert_num_queries(2):  # the locking read and the update, no savepoint
        assert record_status(delivery, "delivered")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.sent_at, delivery.attempts) == ("delivered", NOW, 1)
    assert signals == [(delivery.pk, "queued", "sent"), (delivery.pk, "sent", "delivered")]


@pytest.mark.parametrize("final", ["delivered", "failed", "undelivered", "expired"])
@pytest.mark.parametrize(
    "later", ["queued", "sent", "delivered", "failed", "undelivered", "expired"]
)
def test_final_status_never_moves(final, later, signals):
    delivery = make_delivery()
    record_status(delivery, final)
    assert not record_status(delivery, later)
    delivery.refresh_from_db()
    assert delivery.status == final
    assert len(signals) == 1


def test_sent_does_not_repeat_and_stale_instances_are_corrected():
    delivery = make_delivery()
    record_status(delivery, "sent")
    assert not record_status(delivery, "sent")
    stale = Delivery.objects.get(pk=delivery.pk)
    record_status(delivery, "delivered")
    assert not record_status(stale, "failed")
    assert stale.status == "delivered"


def test_apply_receipt_out_of_order_and_duplicates(signals):
    delivery = make_delivery()
    receipt = Receipt(provider_message_id="id-k:sms", status="delivered", at=NOW)
    assert apply_receipt(backend_alias="sms", receipt=receipt) == delivery
    apply_receipt(backend_alias="sms", receipt=receipt)
    apply_receipt(backend_alias="sms", receipt=Receipt("id-k:sms", "sent"))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.delivered_at, delivery.sent_at) == ("delivered", NOW, None)
    assert len(signals) == 1


def test_apply_receipt_matches_the_alias_and_logs_unknown_ids(caplog):
    make_delivery(alias="other")
    with caplog.at_level(logging.WARNING):
        assert apply_receipt(backend_alias="sms", receipt=Receipt("id-k:sms", "delivered")) is None
    assert "unknown message 'id-k:sms'" in caplog.text


@configure(
    RECEIPT_TIMEOUT=2,
    BACKENDS={
        "sms": {"BACKEND": "tests.notifications.test_status.ReceiptBackend"},
        "push": {"BACKEND": "notifications.backends.locmem.PushBackend"},
    },
)
def test_expire_stale_only_for_backends_with_receipts():
    old = make_delivery("a:sms")
    fresh = make_delivery("b:sms")
    push = make_delivery("c:push", alias="push", channel="push")
    queued = make_delivery("d:sms")
    for delivery, at in [(old, NOW), (fresh, NOW + dt.timedelta(hours=1)), (push, NOW)]:
        record_status(delivery, "sent", at=at)
    with freeze_time(NOW + dt.timedelta(hours=2, seconds=1)):
        assert expire_stale_deliveries() == 1
        assert expire_stale() == 0
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "expired", fresh.pk: "sent", push.pk: "sent", queued.pk: "queued"}
    old.refresh_from_db()
    assert old.expired_at == NOW + dt.timedelta(hours=2, seconds=1)
    assert old.error_code == "receipt_timeout"
    assert expire_stale(now=timezone.now()) == 1  # now well past the fresh one's timeout


class ReceiptBackend(locmem.SMSBackend):
    supports_receipts = True
