import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from pytest_django import Settings

from notifications import status
from notifications.models import Delivery, UnmatchedReceipt
from notifications.tasks import sweep_deliveries
from notifications.webhooks import views

from .receipt_requests import (
    RECEIPT_BACKENDS,
    RECEIPT_TOKEN,
    TWILIO_DELIVERED,
    TWILIO_URL,
    aliyun_report,
    delivery,
    post_json,
    twilio_post,
)

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.notifications.urls")]


@pytest.fixture(autouse=True)
def _backends(settings: Settings) -> None:
    settings.NOTIFICATIONS = {"BACKENDS": RECEIPT_BACKENDS}


def test_twilio_callback_moves_the_delivery(client: Client) -> None:
    d = delivery("tw", "SM1")
    response = twilio_post(client, TWILIO_DELIVERED)
    assert response.status_code == 204
    d.refresh_from_db()
    assert d.status == Delivery.Status.DELIVERED
    assert d.delivered_at is not None


def test_twilio_failed_callback_records_the_error(client: Client) -> None:
    d = delivery("tw", "SM1")
    twilio_post(client, {**TWILIO_DELIVERED, "MessageStatus": "undelivered", "ErrorCode": "30003"})
    d.refresh_from_db()
    assert (d.status, d.error_code) == (Delivery.Status.UNDELIVERED, "30003")


def test_twilio_intermediate_status_changes_nothing(client: Client) -> None:
    d = delivery("tw", "SM1")
    assert twilio_post(client, {**TWILIO_DELIVERED, "MessageStatus": "sending"}).status_code == 204
    d.refresh_from_db()
    assert d.status == Delivery.Status.SENT


def test_twilio_signature_uses_webhook_url_base(client: Client) -> None:
    d = delivery("tw-proxied", "SM1")
    url = "/notifications/receipts/tw-proxied/"
    forged_host = twilio_post(client, TWILIO_DELIVERED, url=url)
    assert forged_host.status_code == 400
    ok = twilio_post(client, TWILIO_DELIVERED, url=url, signed_url="https://club.example.com" + url)
    assert ok.status_code == 204
    d.refresh_from_db()
    assert d.status == Delivery.Status.DELIVERED


@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_X_TWILIO_SIGNATURE": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}],
)
def test_forged_twilio_callback_is_refused(client: Client, headers: dict[str, Any]) -> None:
    d = delivery("tw", "SM1")
    response = client.post(
        TWILIO_URL,
        urlencode(TWILIO_DELIVERED),
        content_type="application/x-www-form-urlencoded",
        **headers,
    )
    assert response.status_code == 400
    d.refresh_from_db()
    assert d.status == Delivery.Status.SENT


def test_tampered_twilio_params_are_refused(client: Client) -> None:
    d = delivery("tw", "SM1")
    response = twilio_post(client, TWILIO_DELIVERED, tamper={"MessageStatus": "failed"})
    assert response.status_code == 400
    d.refresh_from_db()
    assert d.status == Delivery.Status.SENT


def test_aliyun_reports_with_duplicates(client: Client) -> None:
    ok, failed = delivery("ali", "900619746936498440^0"), delivery("ali", "1234^0")
    reports = [
        aliyun_report("900619746936498440^0", True, "2025-03-01 16:00:05"),
        aliyun_report("1234^0", False, "2025-03-01 16:00:07"),
        aliyun_report("900619746936498440^0", True, "2025-03-01 16:00:09"),  # pushed twice
        aliyun_report("unknown^0", True, "2025-03-01 16:00:09"),
    ]
    response = post_json(client, "ali", reports)
    assert response.status_code == 200
    assert response.json() == {"code": 0, "msg": "成功"}
    ok.refresh_from_db()
    failed.refresh_from_db()
    assert ok.status == Delivery.Status.DELIVERED
    assert ok.delivered_at == dt.datetime(2025, 3, 1, 8, 0, 5, tzinfo=dt.UTC)
    assert (failed.status, failed.error_code, failed.error_message) == (
        Delivery.Status.UNDELIVERED,
        "MK:0001",
        "空号",
    )
    # The same batch again, and a contrary report later: a final status does not move.
    post_json(client, "ali", reports)
    post_json(client, "ali", [aliyun_report("900619746936498440^0", False, "2025-03-01 16:01:00")])
    ok.refresh_from_db()
    assert (ok.status, ok.delivered_at) == (
        Delivery.Status.DELIVERED,
        dt.datetime(2025, 3, 1, 8, 0, 5, tzinfo=dt.UTC),
    )


def test_a_report_before_its_delivery_is_applied_by_the_sweep(client: Client) -> None:
    # The provider reports before the transaction that records the delivery commits.
    report = aliyun_report("1^0", True, "2025-03-01 16:00:05")
    assert post_json(client, "ali", [report]).status_code == 200
    assert UnmatchedReceipt.objects.filter(backend_alias="ali", provider_message_id="1^0").exists()
    d = delivery("ali", "1^0")
    assert sweep_deliveries()["receipts_applied"] == 1
    d.refresh_from_db()
    assert (d.status, d.delivered_at) == (
        Delivery.Status.DELIVERED,
        dt.datetime(2025, 3, 1, 8, 0, 5, tzinfo=dt.UTC),
    )
    assert not UnmatchedReceipt.objects.exists()


@pytest.mark.parametrize(("token", "status"), [(RECEIPT_TOKEN, 200), ("wrong", 400)])
def test_receipt_token_in_a_header(client: Client, token: str, status: int) -> None:
    d = delivery("tc", "2019:-1")
    report = {"report_status": "SUCCESS", "sid": "2019:-1", "user_receive_time": ""}
    response = client.post(
        "/notifications/receipts/tc/",
        json.dumps([report]),
        content_type="application/json",
        HTTP_X_RECEIPT_TOKEN=token,
    )
    assert response.status_code == status
    d.refresh_from_db()
    assert (d.status == Delivery.Status.DELIVERED) is (status == 200)


def test_tencent_reports_out_of_order(client: Client) -> None:
    d = delivery("tc", "2019:-6872934875", status=Delivery.Status.QUEUED)
    report = {
        "user_receive_time": "2025-03-01 16:00:05",
        "nationcode": "86",
        "mobile": "13800138000",
        "report_status": "SUCCESS",
        "errmsg": "DELIVRD",
        "description": "用户短信送达成功",
        "sid": "2019:-6872934875",
    }
    response = post_json(client, "tc", [report])
    assert response.status_code == 200
    assert response.json() == {"result": 0, "errmsg": "OK"}
    d.refresh_from_db()
    assert d.status == Delivery.Status.DELIVERED
    post_json(client, "tc", [{**report, "report_status": "FAIL", "errmsg": "MK:0001"}, report])
    d.refresh_from_db()
    assert (d.status, d.error_code) == (Delivery.Status.DELIVERED, "")


def test_delivered_then_sent_stays_delivered(client: Client) -> None:
    d = delivery("tw", "SM1")
    twilio_post(client, TWILIO_DELIVERED)
    twilio_post(client, {**TWILIO_DELIVERED, "MessageStatus": "sent"})
    d.refresh_from_db()
    assert d.status == Delivery.Status.DELIVERED


@pytest.mark.parametrize(
    "body",
    [
        "[{not json",
        '{"biz_id": "1"}',
        [{"biz_id": "900619746936498440^0"}],
        [{"biz_id": "900619746936498440^0", "success": "yes"}],
        [{"biz_id": "900619746936498440^0", "success": True, "report_time": "yesterday"}],
    ],
)
def test_malformed_report_is_refused_and_changes_nothing(client: Client, body: object) -> None:
    d = delivery("ali", "900619746936498440^0")
    valid_first = [aliyun_report("900619746936498440^0", True, "2025-03-01 16:00:05")]
    if isinstance(body, list):
        body = valid_first + body  # a bad item spoils the whole push
    assert post_json(client, "ali", body).status_code == 400
    d.refresh_from_db()
    assert d.status == Delivery.Status.SENT


@pytest.mark.parametrize(("alias", "token"), [("ali", "wrong"), ("ali", ""), ("ali-open", "")])
def test_report_without_the_receipt_token_is_refused(
    client: Client, alias: str, token: str
) -> None:
    d = delivery(alias, "1^0")
    response = post_json(client, alias, [aliyun_report("1^0", True, "2025-03-01 16:00:05")], token)
    assert response.status_code == 400
    d.refresh_from_db()
    assert d.status == Delivery.Status.SENT


def test_failure_while_applying_answers_500_and_rolls_back(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = delivery("ali", "1^0"), delivery("ali", "2^0")
    real = status.apply_receipt
    calls = []

    def flaky(**kwargs: object) -> object:
        calls.append(kwargs)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(views, "apply_receipt", flaky)
    reports = [
        aliyun_report("1^0", True, "2025-03-01 16:00:05"),
        aliyun_report("2^0", True, "2025-03-01 16:00:05"),
    ]
    assert post_json(client, "ali", reports).status_code == 500
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (Delivery.Status.SENT, Delivery.Status.SENT)


def test_unknown_alias_is_404(client: Client) -> None:
    assert (
        client.post(
            "/notifications/receipts/nope/", "[]", content_type="application/json"
        ).status_code
        == 404
    )


def test_backend_without_receipts_is_404(client: Client) -> None:
    assert (
        client.post(
            "/notifications/receipts/jp/", "[]", content_type="application/json"
        ).status_code
        == 404
    )


def test_only_post(client: Client) -> None:
    assert client.get(f"/notifications/receipts/ali/?token={RECEIPT_TOKEN}").status_code == 405


def test_url_name() -> None:
    from django.urls import reverse

    assert reverse("notifications:receipt", args=["ali"]) == "/notifications/receipts/ali/"
