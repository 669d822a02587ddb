"""Hostile and malformed receipt callbacks: each is answered 400 and changes nothing, never
500 (which makes a provider send the whole batch again, forever). Run on SQLite and on
PostgreSQL, whose varchar and text columns refuse what SQLite stores."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from freezegun import freeze_time
from pytest_django import Settings

from notifications.backends.tencent import TencentSMSBackend
from notifications.models import Delivery, UnmatchedReceipt
from notifications.webhooks.validation import MESSAGE_ID_MAX_LENGTH

from .receipt_requests import (
    RECEIPT_BACKENDS,
    TWILIO_DELIVERED,
    TWILIO_URL,
    aliyun_report,
    delivery,
    post_json,
    twilio_post,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.notifications.urls")]

NOW = "2025-03-01 08:00:00"  # UTC; 16:00 in China


@pytest.fixture(autouse=True)
def _backends(settings: Settings) -> None:
    settings.NOTIFICATIONS = {"BACKENDS": RECEIPT_BACKENDS}


def assert_refused(response: Any, *deliveries: Delivery) -> None:
    assert response.status_code == 400
    for d in deliveries:
        d.refresh_from_db()
        assert d.status == Delivery.Status.SENT
    assert not UnmatchedReceipt.objects.exists()


def test_deeply_nested_json_is_refused(client: Client) -> None:
    d = delivery("ali", "1^0")
    assert_refused(post_json(client, "ali", "[" * 100_000 + "]" * 100_000), d)


@freeze_time(NOW)
@pytest.mark.parametrize(
    "report_time",
    [
        "0001-01-01 00:00:00",  # before year 1 in UTC: OverflowError on SQLite
        "0001-01-01 08:00:00",
        "1999-12-31 23:59:59",
        "2000-01-01 07:59:59",  # a second before 2000 in UTC
        "2025-03-02 16:00:01",  # a second more than a day ahead of our clock
        "9999-12-31 23:59:59",
    ],
)
def test_impossible_report_time_is_refused(client: Client, report_time: str) -> None:
    d = delivery("ali", "1^0")
    valid = aliyun_report("2^0", True, "2025-03-01 16:00:00")
    response = post_json(client, "ali", [valid, aliyun_report("1^0", True, report_time)])
    assert_refused(response, d)


@freeze_time(NOW)
@pytest.mark.parametrize(
    ("report_time", "utc"),
    [
        ("2000-01-01 08:00:00", "2000-01-01T00:00:00+00:00"),
        ("2025-03-02 16:00:00", "2025-03-02T08:00:00+00:00"),
    ],
)
def test_report_times_at_the_bounds_are_applied(client: Client, report_time: str, utc: str) -> None:
    d = delivery("ali", "1^0")
    assert post_json(client, "ali", [aliyun_report("1^0", True, report_time)]).status_code == 200
    d.refresh_from_db()
    assert d.delivered_at is not None
    assert d.delivered_at.isoformat() == utc


@pytest.mark.parametrize("length", [MESSAGE_ID_MAX_LENGTH + 1, 300])
def test_aliyun_biz_id_longer_than_the_column_is_refused(client: Client, length: int) -> None:
    d = delivery("ali", "1^0")
    reports = [
        aliyun_report("1^0", True, "2025-03-01 16:00:00"),
        aliyun_report("9" * length, True, ""),
    ]
    assert_refused(post_json(client, "ali", reports), d)


def test_a_message_id_as_long_as_the_column_is_stored(client: Client) -> None:
    message_id = "9" * MESSAGE_ID_MAX_LENGTH
    assert post_json(client, "ali", [aliyun_report(message_id, True, "")]).status_code == 200
    assert UnmatchedReceipt.objects.get().provider_message_id == message_id


def test_tencent_sid_longer_than_the_column_is_refused(client: Client) -> None:
    report = {"report_status": "SUCCESS", "sid": "x" * 300, "user_receive_time": ""}
    assert_refused(post_json(client, "tc", [report]))


@pytest.mark.parametrize(
    "report",
    [
        {"biz_id": "1^0\x00"},  # PostgreSQL stores no NUL
        {"err_msg": "空号\x00", "success": False},
        {"err_code": "\ud800", "success": False},  # an unpaired surrogate encodes to nothing
        {"biz_id": ""},
        {"biz_id": 900619746936498440},  # a number, not the id's text
        {"biz_id": ["1^0"]},
    ],
)
def test_report_with_text_no_database_stores_is_refused(
    client: Client, report: dict[str, object]
) -> None:
    d = delivery("ali", "1^0")
    body = json.dumps([{**aliyun_report("1^0", True, ""), **report}])  # \ud800 stays escaped
    assert_refused(post_json(client, "ali", body), d)


def test_twilio_message_sid_of_5000_characters_is_refused(client: Client) -> None:
    assert_refused(twilio_post(client, {**TWILIO_DELIVERED, "MessageSid": "S" * 5000}))


def test_twilio_error_code_with_a_nul_is_refused(client: Client) -> None:
    d = delivery("tw", "SM1")
    params = {**TWILIO_DELIVERED, "MessageStatus": "failed", "ErrorCode": "300\x0003"}
    assert_refused(twilio_post(client, params), d)


def test_a_body_over_the_upload_limit_is_refused(client: Client, settings: Settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    reports = [aliyun_report(f"{n}^0", True, "") for n in range(50)]
    assert_refused(post_json(client, "ali", reports))


def test_a_host_with_an_impossible_port_is_refused(client: Client) -> None:
    response = twilio_post(client, TWILIO_DELIVERED)  # signed for http://testserver/…
    assert response.status_code == 204
    forged = client.post(
        TWILIO_URL,
        "MessageSid=SM1&MessageStatus=delivered",
        content_type="application/x-www-form-urlencoded",
        HTTP_HOST="testserver:99999",
        HTTP_X_TWILIO_SIGNATURE="AAAA",
    )
    assert forged.status_code == 400


@pytest.mark.parametrize(
    ("secure", "host", "signed_url"),
    [
        (True, "testserver", "https://testserver:443" + TWILIO_URL),
        (False, "testserver", "http://testserver:80" + TWILIO_URL),
        (False, "testserver:8000", "http://testserver" + TWILIO_URL),
        (False, "testserver:8000", "http://testserver:8000" + TWILIO_URL),
    ],
)
def test_twilio_signature_with_or_without_the_port(
    client: Client, secure: bool, host: str, signed_url: str
) -> None:
    d = delivery("tw", "SM1")
    response = twilio_post(
        client, TWILIO_DELIVERED, signed_url=signed_url, secure=secure, HTTP_HOST=host
    )
    assert response.status_code == 204
    d.refresh_from_db()
    assert d.status == Delivery.Status.DELIVERED


def test_twilio_signature_for_another_port_is_refused(client: Client) -> None:
    d = delivery("tw", "SM1")
    response = twilio_post(
        client, TWILIO_DELIVERED, signed_url="https://testserver:8443" + TWILIO_URL, secure=True
    )
    assert_refused(response, d)


def test_an_unexpected_failure_while_reading_is_answered_500(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: object, item: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(TencentSMSBackend, "receipt_from_item", broken)
    report = {"report_status": "SUCCESS", "sid": "1", "user_receive_time": ""}
    assert post_json(client, "tc", [report]).status_code == 500
    assert "The receipt callback for backend 'tc' failed." in caplog.messages


def test_a_backend_that_does_not_load_is_answered_500(client: Client, settings: Settings) -> None:
    settings.NOTIFICATIONS = {
        "BACKENDS": {**RECEIPT_BACKENDS, "gone": {"BACKEND": "notifications.backends.nope.X"}}
    }
    assert post_json(client, "gone", []).status_code == 500
