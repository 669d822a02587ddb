import datetime as dt
import logging
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from freezegun import freeze_time
from pytest_django import DjangoAssertNumQueries

from notifications import dispatch
from notifications.backends import locmem
from notifications.dispatch import Notification, send
from notifications.exceptions import BackendError, MessageError
from notifications.messages import PushMessage, SendResult, SMSMessage
from notifications.models import Delivery, Device
from notifications.signals import delivery_updated
from notifications.types import User

from ..concurrency import run_concurrently
from .helpers import (
    CONTEXT,
    PHONE,
    PROVIDER_BACKENDS,
    configure,
    no_receivers,
    phone_recipient,
    push_tokens,
)
from .providers import FakeProvider, reply

pytestmark = pytest.mark.django_db
HELLO = Notification("tests.greeting", CONTEXT)


@pytest.fixture
def user() -> User:
    user = get_user_model().objects.create(username="ann")
    # Read by the default resolver; auth.User declares neither.
    vars(user).update(phone_number=PHONE, time_zone="Asia/Shanghai")
    return user


@pytest.fixture
def devices(user: User) -> list[Device]:
    return [
        Device.objects.create(user=user, platform="ios", provider="apns", token=f"token-{i}")
        for i in range(2)
    ]


def test_all_sends_sms_and_one_push_per_device(user: User, devices: list[Device]) -> None:
    result = send(user, HELLO, channels=("sms", "push"), idempotency_key="k", reference="r:1")
    assert result.accepted
    assert [d.idempotency_key for d in result.deliveries] == [
        "k:sms",
        f"k:push:{devices[0].pk}",
        f"k:push:{devices[1].pk}",
    ]
    assert {d.status for d in result.deliveries} == {"sent"}
    assert {d.reference for d in result.deliveries} == {"r:1"}
    sms = result.deliveries[0]
    assert (sms.recipient, sms.user, sms.attempts, sms.locale) == ("+86 138****5678", user, 1, "en")
    assert sms.provider_message_id.startswith("locmem-")
    assert len(locmem.outbox) == 3
    assert locmem.outbox[0] == SMSMessage(
        to=PHONE,
        body="Hello Ann, code 42",
        metadata={
            "delivery_id": sms.pk,
            "idempotency_key": "k:sms",
            "template_key": "tests.greeting",
        },
    )
    assert isinstance(locmem.outbox[1], PushMessage)
    assert locmem.outbox[1].token == "token-0"


def test_same_key_sends_nothing_twice(user: User) -> None:
    first = send(user, HELLO, channels=("sms",), idempotency_key="k")
    second = send(user, HELLO, channels=("sms",), idempotency_key="k")
    assert len(locmem.outbox) == 1
    assert [d.pk for d in second.deliveries] == [d.pk for d in first.deliveries]
    assert second.accepted


def test_a_call_cut_short_between_channels_is_finished_by_the_next(
    user: User, devices: list[Device]
) -> None:
    # The first call recorded push, then stopped (here: it only had push to do).
    send(user, HELLO, channels=("push",), idempotency_key="k")
    assert len(locmem.outbox) == 2
    result = send(user, HELLO, channels=("push", "sms"), idempotency_key="k")
    assert len(locmem.outbox) == 3
    assert isinstance(locmem.outbox[-1], SMSMessage)
    assert {d.channel for d in result.deliveries} == {"push", "sms"}


def test_first_success_goes_on_to_sms_after_push_failed_in_an_earlier_call(
    user: User, devices: list[Device]
) -> None:
    locmem.next_results += [SendResult.permanent_failure("bad")] * 2
    send(user, HELLO, channels=("push",), strategy="first_success", idempotency_key="k")
    result = send(
        user, HELLO, channels=("push", "sms"), strategy="first_success", idempotency_key="k"
    )
    assert result.accepted
    assert isinstance(locmem.outbox[-1], SMSMessage)


def test_first_success_stops_at_the_first_accepted_channel(
    user: User, devices: list[Device]
) -> None:
    result = send(
        user, HELLO, channels=("push", "sms"), strategy="first_success", idempotency_key="k"
    )
    assert {d.channel for d in result.deliveries} == {"push"}
    assert all(isinstance(m, PushMessage) for m in locmem.outbox)


def test_first_success_falls_back_when_push_fails(user: User, devices: list[Device]) -> None:
    locmem.next_results += [SendResult.permanent_failure("bad", token_invalid=True)] * 2
    result = send(
        user, HELLO, channels=("push", "sms"), strategy="first_success", idempotency_key="k"
    )
    assert [d.status for d in result.deliveries] == ["failed", "failed", "sent"]
    assert result.deliveries[0].failed_at is not None
    assert not Device.objects.filter(active=True).exists()
    assert isinstance(locmem.outbox[-1], SMSMessage)
    # The second call sees the accepted SMS and sends nothing more.
    again = send(
        user, HELLO, channels=("push", "sms"), strategy="first_success", idempotency_key="k"
    )
    assert again.accepted
    assert len(locmem.outbox) == 1


def test_first_success_skips_a_channel_that_cannot_reach(user: User) -> None:
    result = send(
        user, HELLO, channels=("push", "sms"), strategy="first_success", idempotency_key="k"
    )
    assert result.skipped == {"push": "no active push device"}
    assert [d.channel for d in result.deliveries] == ["sms"]


def test_retryable_failure_stays_queued_and_the_same_key_retries(user: User) -> None:
    locmem.next_results.append(SendResult.retry("timeout", "provider slow"))
    first = send(user, HELLO, channels=("sms",), idempotency_key="k")
    [delivery] = first.deliveries
    assert not first.accepted
    assert first.pending == [delivery]
    assert (delivery.status, delivery.attempts, delivery.error_code) == ("queued", 1, "timeout")
    second = send(user, HELLO, channels=("sms",), idempotency_key="k")
    [retried] = second.deliveries
    assert retried.pk == delivery.pk
    assert (retried.status, retried.attempts, retried.error_code) == ("sent", 2, "")
    assert len(locmem.outbox) == 1


def test_first_sms_takes_two_lookups_an_insert_and_an_update(
    django_assert_num_queries: DjangoAssertNumQueries,
) -> None:
    # With no delivery_updated receiver (renewals connects one; each adds a savepoint).
    with no_receivers(), django_assert_num_queries(6) as captured:
        [delivery] = send(
            phone_recipient(), HELLO, channels=("sms",), idempotency_key="k"
        ).deliveries
    # Existing deliveries and rate limit, then one transaction (a savepoint inside the test's).
    verbs = [query["sql"].split()[0] for query in captured]
    assert verbs == ["SELECT", "SELECT", "SAVEPOINT", "INSERT", "UPDATE", "RELEASE"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("sent", 1)
    assert delivery.sent_at is not None


def test_receivers_hear_each_change_and_a_failing_one_cannot_undo_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    received = []

    def receiver(
        sender: object, delivery: Delivery, old_status: str, new_status: str, **kwargs: object
    ) -> None:
        received.append((old_status, new_status))
        Delivery.objects.filter(pk=delivery.pk).update(reference="touched by the receiver")
        raise RuntimeError("receiver bug")

    delivery_updated.connect(receiver)
    try:
        [delivery] = send(
            phone_recipient(), HELLO, channels=("sms",), idempotency_key="k"
        ).deliveries
        again = send(phone_recipient(), HELLO, channels=("sms",), idempotency_key="k")
    finally:
        delivery_updated.disconnect(receiver)
    assert received == [("queued", "sent")]
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    assert delivery.reference == ""  # the receiver's own writes were rolled back alone
    assert again.deliveries[0].pk == delivery.pk
    assert len(locmem.outbox) == 1  # nothing was sent twice
    assert "receiver failed" in caplog.text


@pytest.mark.parametrize(("earlier_results", "attempts"), [([], 1), ([SendResult.retry("t")], 2)])
def test_a_delivery_inserted_after_the_lookup_is_not_sent_twice(
    monkeypatch: pytest.MonkeyPatch, earlier_results: list[SendResult], attempts: int
) -> None:
    # As if a concurrent call inserted the delivery between this call's lookup and insert.
    recent_firsts = dispatch._recent_firsts

    def concurrent_call(*args: Any) -> dict[str, list[dt.datetime]]:
        monkeypatch.setattr(dispatch, "_recent_firsts", recent_firsts)
        locmem.next_results.extend(earlier_results)
        send(phone_recipient(), HELLO, channels=("sms",), idempotency_key="k")
        return recent_firsts(*args)

    monkeypatch.setattr(dispatch, "_recent_firsts", concurrent_call)
    [delivery] = send(phone_recipient(), HELLO, channels=("sms",), idempotency_key="k").deliveries
    assert len(locmem.outbox) == 1
    assert Delivery.objects.get() == delivery
    assert (delivery.status, delivery.attempts) == ("sent", attempts)


def test_backend_error_is_retryable(user: User) -> None:
    locmem.next_results.append(BackendError("network down"))
    [delivery] = send(user, HELLO, channels=("sms",), idempotency_key="k").deliveries
    assert (delivery.status, delivery.error_code) == ("queued", "backend_error")


def test_invalid_message_stores_nothing(user: User) -> None:
    with pytest.raises(MessageError, match="code"):
        send(
            user,
            Notification("tests.greeting", {"name": "Ann"}),
            channels=("sms",),
            idempotency_key="k",
        )
    with (
        configure(SMS_MAX_SEGMENTS=1),
        pytest.raises(MessageError, match="segments"),
    ):
        send(
            user,
            Notification("tests.greeting", {"name": "A" * 200, "code": "1"}),
            channels=("sms",),
            idempotency_key="k",
        )
    assert not Delivery.objects.exists()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="channels"):
        send(phone_recipient(), HELLO, channels=("fax",), idempotency_key="k")
    with pytest.raises(ValueError, match="strategy"):
        send(phone_recipient(), HELLO, channels=("sms",), strategy="any", idempotency_key="k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="idempotency_key"):
        send(phone_recipient(), HELLO, channels=("sms",), idempotency_key="")


@configure(QUIET_HOURS=(21, 8))
@pytest.mark.parametrize(
    ("utc_now", "deferred_until"),
    [
        ("2025-03-01 12:59:59", None),  # 20:59:59 in Shanghai
        ("2025-03-01 13:00:00", "2025-03-02 00:00:00"),  # 21:00 -> 08:00 next day
        ("2025-03-01 15:59:59", "2025-03-02 00:00:00"),  # 23:59:59
        ("2025-03-01 16:00:00", "2025-03-02 00:00:00"),  # 00:00
        ("2025-03-01 23:59:59", "2025-03-02 00:00:00"),  # 07:59:59
        ("2025-03-02 00:00:00", None),  # 08:00
    ],
)
def test_quiet_hours_in_the_recipients_zone(utc_now: str, deferred_until: str | None) -> None:
    with freeze_time(utc_now):
        result = send(phone_recipient(), HELLO, channels=("sms",), idempotency_key="k")
    if deferred_until is None:
        assert result.accepted
        assert result.deferred_until is None
    else:
        assert result.reason == "quiet_hours"
        assert result.deferred_until == dt.datetime.fromisoformat(deferred_until + "+00:00")
        assert result.deliveries == []
        assert locmem.outbox == []
        assert not Delivery.objects.exists()


@configure(QUIET_HOURS=(1, 6))
def test_quiet_hours_that_do_not_cross_midnight() -> None:
    with freeze_time("2025-03-01 02:00:00"):
        result = send(phone_recipient(zone="UTC"), HELLO, channels=("sms",), idempotency_key="k")
    assert result.deferred_until == dt.datetime(2025, 3, 1, 6, tzinfo=dt.UTC)


@configure(RATE_LIMIT=(2, 3600))
def test_rate_limit_counts_notifications_per_recipient(user: User, devices: list[Device]) -> None:
    with freeze_time("2025-03-01 02:00:00"):
        assert send(user, HELLO, channels=("sms", "push"), idempotency_key="a").accepted
    with freeze_time("2025-03-01 02:30:00"):
        assert send(user, HELLO, channels=("sms", "push"), idempotency_key="b").accepted
        limited = send(user, HELLO, channels=("sms",), idempotency_key="c")
        assert limited.reason == "rate_limited"
        assert limited.deferred_until == dt.datetime(2025, 3, 1, 3, tzinfo=dt.UTC)
        assert not limited.deliveries
        # Another person is not affected; a repeat of an earlier key is not counted again.
        assert send(phone_recipient(), HELLO, channels=("sms",), idempotency_key="d").accepted
        assert send(user, HELLO, channels=("sms",), idempotency_key="b").accepted
    with freeze_time("2025-03-01 03:00:01"):
        assert send(user, HELLO, channels=("sms",), idempotency_key="c").accepted
    assert len(locmem.outbox) == 2 * 3 + 1 + 1


def test_logs_never_show_a_full_phone_number_or_token(
    user: User, devices: list[Device], caplog: pytest.LogCaptureFixture
) -> None:
    locmem.next_results.append(SendResult.retry("timeout"))
    with caplog.at_level(logging.DEBUG):
        send(user, HELLO, channels=("sms", "push"), idempotency_key="k")
        send(user, HELLO, channels=("sms", "push"), idempotency_key="k")
    assert "+86 138****5678" in caplog.text
    assert "13812345678" not in caplog.text
    assert "token-0" not in caplog.text
    assert "token-1" not in caplog.text


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_with_one_key_send_once(user: User) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serializes writers, so no race can happen")
    results = run_concurrently(
        lambda index: send(user, HELLO, channels=("sms",), idempotency_key="race")
    )
    assert len(locmem.outbox) == 1
    assert Delivery.objects.count() == 1
    assert {r.deliveries[0].pk for r in results} == {Delivery.objects.get().pk}


@pytest.fixture
def provider_devices(user: User) -> dict[str, Device]:
    return {
        provider: Device.objects.create(
            user=user, platform=platform, provider=provider, token=f"{provider}-token"
        )
        for provider, platform in [("fcm", "android"), ("apns", "ios"), ("jpush", "android")]
    }


def test_push_goes_through_the_alias_of_each_devices_provider(
    user: User, provider_devices: dict[str, Device]
) -> None:
    jpush = provider_devices["jpush"]
    with configure(
        BACKENDS=PROVIDER_BACKENDS, CHANNELS={"sms": "sms", "push": {"fcm": "fcm", "apns": "apns"}}
    ):
        result = send(user, HELLO, channels=("push",), idempotency_key="k")
    assert {
        d.device.provider if d.device else None: d.backend_alias for d in result.deliveries
    } == {
        "fcm": "fcm",
        "apns": "apns",
    }
    assert {d.status for d in result.deliveries} == {"sent"}
    assert push_tokens() == ["fcm-token", "apns-token"]
    assert result.skipped == {f"push:{jpush.pk}": "no push alias for provider 'jpush'"}
    assert not Delivery.objects.filter(device=jpush).exists()
    assert Device.objects.filter(active=True).count() == 3


def test_push_is_skipped_when_no_alias_serves_any_device(
    user: User, provider_devices: dict[str, Device]
) -> None:
    with configure(BACKENDS=PROVIDER_BACKENDS, CHANNELS={"sms": "sms", "push": {"fcm": "fcm"}}):
        Device.objects.exclude(provider="jpush").update(active=False)
        result = send(user, HELLO, channels=("push",), idempotency_key="k")
    assert result.deliveries == []
    assert result.skipped["push"] == "no push alias for the providers of the recipient's devices"


@pytest.mark.parametrize(
    ("alias", "providers"), [("fcm", {"fcm"}), ("push", {"fcm", "apns", "jpush"})]
)
def test_one_push_alias_sends_to_its_providers_devices(
    user: User, provider_devices: dict[str, Device], alias: str, providers: set[str]
) -> None:
    with configure(BACKENDS=PROVIDER_BACKENDS, CHANNELS={"sms": "sms", "push": alias}):
        result = send(user, HELLO, channels=("push", "sms"), idempotency_key="k")
    assert {d.device.provider for d in result.deliveries if d.device} == providers
    assert {d.backend_alias for d in result.deliveries} == {alias, "sms"}
    assert len(result.skipped) == 3 - len(providers)
    assert Device.objects.filter(active=True).count() == 3


def test_an_unexpected_exception_still_records_accepted_messages(
    user: User, devices: list[Device], caplog: pytest.LogCaptureFixture
) -> None:
    locmem.next_results += [SendResult.sent("accepted"), ValueError("no id for +8613812345678")]
    with caplog.at_level(logging.ERROR):
        result = send(user, HELLO, channels=("push",), idempotency_key="k")
    accepted, raised = result.deliveries
    assert (accepted.status, accepted.provider_message_id) == ("sent", "accepted")
    assert (raised.status, raised.error_code, raised.error_message) == (
        "queued",
        "backend_exception",
        "ValueError: no id for +86 138****5678",
    )
    assert dict(Delivery.objects.values_list("pk", "status")) == {
        accepted.pk: "sent",
        raised.pk: "queued",
    }
    assert "Traceback" in caplog.text
    assert "ValueError: no id for +86 138****5678" in caplog.text
    assert "13812345678" not in caplog.text
    # The retry sends only the message the provider did not accept.
    again = send(user, HELLO, channels=("push",), idempotency_key="k")
    assert [d.status for d in again.deliveries] == ["sent", "sent"]
    assert push_tokens() == [devices[1].token]


def test_send_refuses_to_run_inside_a_transaction(user: User) -> None:
    with pytest.raises(TransactionManagementError, match="on_commit"), transaction.atomic():
        send(user, HELLO, channels=("sms",), idempotency_key="k")
    assert locmem.outbox == []
    assert not Delivery.objects.exists()


TWILIO_INVALID_TO = "The 'To' number +14155550100 is not a valid phone number."


@pytest.mark.parametrize(
    ("status", "code", "status_after"), [(400, "21211", "failed"), (401, "backend_error", "queued")]
)
def test_provider_error_texts_are_stored_and_logged_without_the_number(
    caplog: pytest.LogCaptureFixture, status: int, code: str, status_after: str
) -> None:
    fake = FakeProvider(
        reply(status, {"code": 21211, "message": TWILIO_INVALID_TO, "status": status})
    )
    twilio = {
        "BACKEND": "notifications.backends.twilio.TwilioSMSBackend",
        "OPTIONS": {
            "account_sid": "AC1",
            "auth_token": "secret",
            "from_number": "+15005550006",
            "transport": fake.transport,
        },
    }
    with configure(BACKENDS={"sms": twilio}), caplog.at_level(logging.DEBUG):
        result = send(
            phone_recipient("+14155550100"), HELLO, channels=("sms",), idempotency_key="k"
        )
    delivery = Delivery.objects.get(pk=result.deliveries[0].pk)
    assert (delivery.status, delivery.error_code) == (status_after, code)
    assert "+1 415****100" in delivery.error_message
    assert "4155550100" not in delivery.error_message
    assert "4155550100" not in caplog.text
