import datetime as dt
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from django.utils import timezone
from freezegun import freeze_time
from pytest_django import DjangoAssertNumQueries

from notifications.backends import locmem
from notifications.messages import Receipt
from notifications.models import Delivery, UnmatchedReceipt
from notifications.signals import delivery_updated
from notifications.status import apply_receipt, expire_stale, record_status
from notifications.tasks import sweep_deliveries

from .helpers import configure, no_receivers

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def make_delivery(
    key: str = "k:sms", alias: str = "sms", *, save: bool = True, **fields: Any
) -> Delivery:
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
    delivery = Delivery(**(values | fields))
    if save:
        delivery.save()
    return delivery


@pytest.fixture
def signals() -> Iterator[list[tuple[int, str, str]]]:
    received: list[tuple[int, str, str]] = []

    def receiver(
        sender: object, delivery: Delivery, old_status: str, new_status: str, **kwargs: object
    ) -> None:
        received.append((delivery.pk, old_status, new_status))

    delivery_updated.connect(receiver)
    yield received
    delivery_updated.disconnect(receiver)


def test_record_status_sets_time_and_signals(signals: list[tuple[int, str, str]]) -> None:
    delivery = make_delivery()
    assert record_status(delivery, "sent", at=NOW)
    assert record_status(delivery, "undelivered", error_code="E1", error_message="off")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.sent_at, delivery.error_code) == ("undelivered", NOW, "E1")
    assert delivery.undelivered_at is not None
    assert signals == [(delivery.pk, "queued", "sent"), (delivery.pk, "sent", "undelivered")]


def test_record_status_locked_saves_other_fields_in_one_update(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    delivery = make_delivery()
    delivery.attempts = 1
    with no_receivers(), django_assert_num_queries(1):
        assert record_status(delivery, "sent", at=NOW, update_fields=["attempts"], locked=True)
    with no_receivers(), django_assert_num_queries(2):  # the locking read and the update
        assert record_status(delivery, "delivered")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.sent_at, delivery.attempts) == ("delivered", NOW, 1)


def test_receivers_run_in_a_savepoint_of_their_own(
    django_assert_num_queries: DjangoAssertNumQueries, signals: list[tuple[int, str, str]]
) -> None:
    delivery = make_delivery()
    with django_assert_num_queries(3):  # the update, and SAVEPOINT/RELEASE around receivers
        assert record_status(delivery, "sent", locked=True)
    assert signals == [(delivery.pk, "queued", "sent")]


@pytest.mark.parametrize("final", ["delivered", "failed", "undelivered"])
@pytest.mark.parametrize(
    "later", ["queued", "sent", "delivered", "failed", "undelivered", "expired"]
)
def test_final_status_never_moves(
    final: str, later: str, signals: list[tuple[int, str, str]]
) -> None:
    delivery = make_delivery()
    record_status(delivery, final)
    assert delivery.is_final
    assert not record_status(delivery, later)
    delivery.refresh_from_db()
    assert delivery.status == final
    assert len(signals) == 1


@pytest.mark.parametrize("later", ["queued", "sent", "expired"])
def test_expired_never_moves_back(later: str) -> None:
    delivery = make_delivery()
    record_status(delivery, "sent")
    record_status(delivery, "expired", error_code="receipt_timeout")
    assert not delivery.is_final
    assert not record_status(delivery, later)
    delivery.refresh_from_db()
    assert delivery.status == "expired"


@pytest.mark.parametrize("final", ["delivered", "failed", "undelivered"])
def test_a_late_receipt_moves_an_expired_delivery_to_its_final_status(
    final: Literal["delivered", "failed", "undelivered"], signals: list[tuple[int, str, str]]
) -> None:
    delivery = make_delivery()
    record_status(delivery, "sent", at=NOW)
    record_status(delivery, "expired", error_code="receipt_timeout")
    later = NOW + dt.timedelta(days=4)
    apply_receipt(backend_alias="sms", receipt=Receipt("id-k:sms", final, at=later))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.error_code) == (final, "")
    assert getattr(delivery, f"{final}_at") == later
    assert delivery.expired_at is not None  # the expiry stays on record
    assert delivery.is_final
    assert signals[-1] == (delivery.pk, "expired", final)


def test_sent_does_not_repeat_and_stale_instances_are_corrected() -> None:
    delivery = make_delivery()
    record_status(delivery, "sent")
    assert not record_status(delivery, "sent")
    stale = Delivery.objects.get(pk=delivery.pk)
    record_status(delivery, "delivered")
    assert not record_status(stale, "failed")
    assert stale.status == "delivered"


def test_apply_receipt_out_of_order_and_duplicates(signals: list[tuple[int, str, str]]) -> None:
    delivery = make_delivery()
    receipt = Receipt(provider_message_id="id-k:sms", status="delivered", at=NOW)
    assert apply_receipt(backend_alias="sms", receipt=receipt) == delivery
    apply_receipt(backend_alias="sms", receipt=receipt)
    apply_receipt(backend_alias="sms", receipt=Receipt("id-k:sms", "sent"))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.delivered_at, delivery.sent_at) == ("delivered", NOW, None)
    assert len(signals) == 1


def test_record_status_masks_phone_numbers_in_the_error() -> None:
    delivery = make_delivery()
    record_status(delivery, "undelivered", error_code="E1", error_message="13800138000 is off")
    delivery.refresh_from_db()
    assert delivery.error_message == "138****8000 is off"


def test_apply_receipt_matches_the_alias_and_stores_unknown_ids() -> None:
    make_delivery(alias="other")
    receipt = Receipt(
        "id-k:sms", "undelivered", at=NOW, error_code="E1", error_message="+8613812345678 off"
    )
    with freeze_time(NOW):
        assert apply_receipt(backend_alias="sms", receipt=receipt) is None
    stored = UnmatchedReceipt.objects.get()
    assert (stored.backend_alias, stored.provider_message_id, stored.status, stored.at) == (
        "sms",
        "id-k:sms",
        "undelivered",
        NOW,
    )
    assert (stored.error_code, stored.error_message) == ("E1", "+86 138****5678 off")
    assert stored.received_at == NOW
    assert Delivery.objects.get().status == "queued"


def test_sweep_applies_a_receipt_that_came_before_its_delivery(
    signals: list[tuple[int, str, str]],
) -> None:
    delivered_at = NOW + dt.timedelta(seconds=3)
    with freeze_time(NOW):
        apply_receipt(backend_alias="sms", receipt=Receipt("id-k:sms", "sent"))
        apply_receipt(backend_alias="sms", receipt=Receipt("id-k:sms", "delivered", delivered_at))
        apply_receipt(backend_alias="sms", receipt=Receipt("id-other", "delivered"))
        apply_receipt(backend_alias="sms", receipt=Receipt("id-b:sms", "undelivered"))
    delivery = make_delivery()  # the sending transactions commit after the receipts came
    other = make_delivery("b:sms")
    record_status(delivery, "sent", at=NOW)
    with freeze_time(NOW + dt.timedelta(minutes=10)):
        assert sweep_deliveries() == {"receipts_applied": 3, "receipts_dropped": 0, "expired": 0}
    delivery.refresh_from_db()
    other.refresh_from_db()
    assert (delivery.status, delivery.delivered_at) == ("delivered", delivered_at)
    assert (other.status, other.undelivered_at) == ("undelivered", NOW)  # when it came
    assert list(UnmatchedReceipt.objects.values_list("provider_message_id", flat=True)) == [
        "id-other"
    ]
    assert signals == [
        (delivery.pk, "queued", "sent"),
        (delivery.pk, "sent", "delivered"),
        (other.pk, "queued", "undelivered"),
    ]


def test_sweep_drops_receipts_whose_delivery_never_appears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with freeze_time(NOW):
        apply_receipt(backend_alias="sms", receipt=Receipt("id-old", "delivered"))
    with freeze_time(NOW + dt.timedelta(days=6)):
        apply_receipt(backend_alias="sms", receipt=Receipt("id-new", "delivered"))
    with freeze_time(NOW + dt.timedelta(days=7, seconds=1)):
        assert sweep_deliveries()["receipts_dropped"] == 1
    assert list(UnmatchedReceipt.objects.values_list("provider_message_id", flat=True)) == [
        "id-new"
    ]
    assert "Dropped 1 receipt(s)" in caplog.text


@configure(
    RECEIPT_TIMEOUT=2,
    BACKENDS={
        "sms": {"BACKEND": "tests.notifications.test_status.ReceiptBackend"},
        "push": {"BACKEND": "notifications.backends.locmem.PushBackend"},
    },
)
def test_expire_stale_only_for_backends_with_receipts() -> None:
    old = make_delivery("a:sms")
    fresh = make_delivery("b:sms")
    push = make_delivery("c:push", alias="push", channel="push")
    queued = make_delivery("d:sms")
    for delivery, at in [(old, NOW), (fresh, NOW + dt.timedelta(hours=1)), (push, NOW)]:
        record_status(delivery, "sent", at=at)
    with freeze_time(NOW + dt.timedelta(hours=2, seconds=1)):
        assert sweep_deliveries()["expired"] == 1
        assert expire_stale() == 0
    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "expired", fresh.pk: "sent", push.pk: "sent", queued.pk: "queued"}
    old.refresh_from_db()
    assert old.expired_at == NOW + dt.timedelta(hours=2, seconds=1)
    assert old.error_code == "receipt_timeout"
    assert expire_stale(now=timezone.now()) == 1  # now well past the fresh one's timeout


class ReceiptBackend(locmem.SMSBackend):
    supports_receipts = True
