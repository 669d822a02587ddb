"""send_many: many send() calls at once, with send()'s guarantees, in a few statements."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time

from notifications import dispatch
from notifications.backends import locmem
from notifications.dispatch import DispatchResult, Notification, Request, send, send_many
from notifications.exceptions import InvalidRecipient, MessageError
from notifications.messages import PushMessage, SendResult
from notifications.models import Delivery, Device
from notifications.recipients import Recipient
from notifications.signals import delivery_updated
from notifications.types import User

from .helpers import CONTEXT, configure, phone_recipient, sms_numbers

pytestmark = pytest.mark.django_db
HELLO = Notification("tests.greeting", CONTEXT, url="https://shop.example/c/1")


def number(i: int) -> str:
    return f"+86138{i:08d}"


def requests(count: int, *, channels: tuple[str, ...] = ("sms",), start: int = 0) -> list[Request]:
    return [
        Request(
            phone_recipient(number(start + i)), HELLO, channels, idempotency_key=f"k{start + i}"
        )
        for i in range(count)
    ]


def sent_all(batch: list[Request]) -> list[DispatchResult]:
    """``send_many(batch)``'s results, after checking that none is a request's own error."""
    results = send_many(batch)
    dispatched = [result for result in results if isinstance(result, DispatchResult)]
    assert len(dispatched) == len(results), results
    return dispatched


def test_every_request_is_sent_and_answered_in_order() -> None:
    results = sent_all(requests(3))
    assert [[d.idempotency_key for d in r.deliveries] for r in results] == [
        ["k0:sms"],
        ["k1:sms"],
        ["k2:sms"],
    ]
    assert all(r.accepted for r in results)
    assert sms_numbers() == [number(i) for i in range(3)]
    assert set(Delivery.objects.values_list("status", "attempts")) == {("sent", 1)}


def test_the_statements_do_not_grow_with_the_number_of_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def statements(count: int, start: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            send_many(requests(count, start=start))
        return len(captured)

    assert statements(2, 0) == statements(20, 100)
    # Each REQUESTS_PER_TRANSACTION requests commit on their own.
    monkeypatch.setattr(dispatch, "REQUESTS_PER_TRANSACTION", 10)
    assert statements(20, 200) > statements(10, 300)


def test_a_crash_before_a_groups_commit_loses_only_that_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dispatch, "REQUESTS_PER_TRANSACTION", 2)
    record = dispatch._record
    calls = []

    def crash_on_the_second_group(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise SystemExit("worker killed")
        return record(*args)

    monkeypatch.setattr(dispatch, "_record", crash_on_the_second_group)
    with pytest.raises(SystemExit):
        send_many(requests(4))
    assert sorted(Delivery.objects.values_list("idempotency_key", flat=True)) == [
        "k0:sms",
        "k1:sms",
    ]


def test_sms_and_push_go_out_together_and_the_push_carries_the_url(
    django_user_model: type[User],
) -> None:
    user = django_user_model.objects.create(username="ann")
    device = Device.objects.create(user=user, platform="android", provider="", token="tok-1")
    recipient = Recipient(user=user, phone=number(1), devices=[device], locale="en")
    [result] = sent_all([Request(recipient, HELLO, ("sms", "push"), idempotency_key="k")])
    assert sorted(d.idempotency_key for d in result.deliveries) == [f"k:push:{device.pk}", "k:sms"]
    [push] = [m for m in locmem.outbox if isinstance(m, PushMessage)]
    assert push.url == "https://shop.example/c/1"


def test_a_requests_own_problem_is_returned_in_its_place_and_the_others_are_sent() -> None:
    bad_number = Request(phone_recipient("12"), HELLO, ("sms",), idempotency_key="bad")
    bad_fields = Request(
        phone_recipient(number(9)),
        Notification("tests.greeting", {"name": "Ann"}),
        ("sms",),
        idempotency_key="fields",
    )
    results = send_many([bad_number, *requests(1), bad_fields])
    assert isinstance(results[0], InvalidRecipient)
    assert isinstance(results[1], DispatchResult)
    assert results[1].accepted
    assert isinstance(results[2], MessageError)
    assert Delivery.objects.count() == 1


def test_a_retry_goes_through_send_and_sends_only_what_is_queued() -> None:
    locmem.next_results.append(SendResult.retry("busy"))
    [first] = sent_all(requests(1))
    assert first.pending
    [second] = sent_all(requests(1))
    assert not second.pending
    assert Delivery.objects.get().attempts == 2
    assert len(locmem.outbox) == 1


def test_first_success_goes_through_send(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def recorded_send(*args: Any, **kwargs: Any) -> DispatchResult:
        calls.append(kwargs)
        return send(*args, **kwargs)

    monkeypatch.setattr(dispatch, "send", recorded_send)
    request = Request(phone_recipient(), HELLO, ("sms",), "k", strategy="first_success")
    [result] = sent_all([request])
    assert result.accepted
    assert calls[0]["strategy"] == "first_success"


def test_the_rate_limit_counts_the_requests_of_the_batch() -> None:
    same_person = [
        Request(phone_recipient(), HELLO, ("sms",), idempotency_key=f"k{i}") for i in range(3)
    ]
    with configure(RATE_LIMIT=(2, 3600)), freeze_time("2027-01-01 04:00:00+00:00"):
        results = sent_all(same_person)
    assert [r.reason for r in results] == ["", "", "rate_limited"]
    assert len(locmem.outbox) == 2


def test_quiet_hours_defer_every_request() -> None:
    with configure(QUIET_HOURS=(21, 8)), freeze_time("2027-01-01 15:00:00+00:00"):
        results = sent_all(requests(2))  # 23:00 in Shanghai
    assert {r.reason for r in results} == {"quiet_hours"}
    assert Delivery.objects.count() == 0


def test_a_key_another_call_inserted_meanwhile_is_not_sent_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recent_firsts = dispatch._recent_firsts

    def concurrent_call(*args: Any) -> dict[str, list[dt.datetime]]:
        monkeypatch.setattr(dispatch, "_recent_firsts", recent_firsts)
        send(phone_recipient(number(1)), HELLO, channels=("sms",), idempotency_key="k1")
        return recent_firsts(*args)

    monkeypatch.setattr(dispatch, "_recent_firsts", concurrent_call)
    results = sent_all(requests(3))
    assert all(r.accepted for r in results)
    assert len(locmem.outbox) == 3
    assert Delivery.objects.count() == 3


def test_a_failing_receiver_cannot_undo_the_batchs_statuses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard = []

    def receiver(sender: object, delivery: Delivery, new_status: str, **kwargs: object) -> None:
        heard.append(delivery.idempotency_key)
        if delivery.idempotency_key == "k1:sms":
            raise RuntimeError("receiver bug")

    delivery_updated.connect(receiver)
    try:
        with caplog.at_level(logging.ERROR, logger="notifications.status"):
            send_many(requests(3))
    finally:
        delivery_updated.disconnect(receiver)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert "receiver failed for delivery" in caplog.text
    assert {"k0:sms", "k2:sms"} <= set(heard)


def test_a_backend_that_raises_leaves_only_that_call_queued_for_a_retry() -> None:
    locmem.next_results.append(RuntimeError("provider bug"))
    first, second = sent_all(requests(2))
    assert [d.error_code for d in first.pending] == ["backend_exception"]
    assert second.accepted
    assert sms_numbers() == [number(1)]
