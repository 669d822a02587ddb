import hashlib
import hmac
import json
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from freezegun import freeze_time

from notifications.backends.tencent import TencentSMSBackend, tc3_authorization
from notifications.exceptions import BackendError, MissingExtra
from notifications.messages import SMSMessage

from .providers import FakeProvider, Responder, reply

NOW = 1740816000  # 2025-03-01T08:00:00Z


def status(number: str, code: str = "Ok", serial: str = "") -> dict[str, object]:
    return {
        "SerialNo": serial or f"serial-{number}",
        "PhoneNumber": number,
        "Fee": 1,
        "SessionContext": "",
        "Code": code,
        "Message": "send success" if code == "Ok" else "failed",
        "IsoCode": "CN",
    }


def answer(*statuses: dict[str, object]) -> Responder:
    return reply(200, {"Response": {"SendStatusSet": list(statuses), "RequestId": "r"}})


def message(to: str = "+8613800138000", template: str = "1110", **params: str) -> SMSMessage:
    return SMSMessage(
        to=to, body="", template_code=template, template_params=params or {"1": "张三", "2": "5"}
    )


def backend(fake: FakeProvider, **options: object) -> TencentSMSBackend:
    return TencentSMSBackend(
        "tc",
        secret_id="AKIDtest",
        secret_key="secretKey",
        sdk_app_id="1400000000",
        sign_name="会员中心",
        transport=fake.transport,
        **options,
    )


def independent_authorization(payload: bytes) -> str:
    """TC3-HMAC-SHA256 as documented, written out step by step."""
    canonical_request = (
        "POST\n/\n\n"
        "content-type:application/json; charset=utf-8\n"
        "host:sms.tencentcloudapi.com\n"
        "x-tc-action:sendsms\n\n"
        "content-type;host;x-tc-action\n" + hashlib.sha256(payload).hexdigest()
    )
    string_to_sign = (
        "TC3-HMAC-SHA256\n"
        f"{NOW}\n"
        "2025-03-01/sms/tc3_request\n" + hashlib.sha256(canonical_request.encode()).hexdigest()
    )

    def sign(key: bytes, msg: str) -> bytes:
        return hmac.new(key, msg.encode(), hashlib.sha256).digest()

    secret_signing = sign(sign(sign(b"TC3secretKey", "2025-03-01"), "sms"), "tc3_request")
    signature = hmac.new(secret_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        "TC3-HMAC-SHA256 Credential=AKIDtest/2025-03-01/sms/tc3_request, "
        f"SignedHeaders=content-type;host;x-tc-action, Signature={signature}"
    )


def test_signature_matches_the_published_example() -> None:
    # The worked example of Tencent Cloud's "Signature v3" documentation (CVM
    # DescribeInstances): its payload hashes to 35e9c5b0…, its canonical request to 5ffe6a04….
    payload = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    authorization = tc3_authorization(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        signed_headers={
            "content-type": "application/json; charset=utf-8",
            "host": "cvm.tencentcloudapi.com",
        },
        payload=payload,
        timestamp=1551113065,
        service="cvm",
    )
    assert authorization == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
        "tc3_request, SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


@freeze_time("2025-03-01 08:00:00")
def test_request() -> None:
    fake = FakeProvider(answer(status("+8613800138000")))
    (result,) = backend(fake).send_messages([message()])
    assert (result.ok, result.provider_message_id) == (True, "serial-+8613800138000")
    request = fake.last
    assert str(request.url) == "https://sms.tencentcloudapi.com/"
    assert json.loads(request.content) == {
        "PhoneNumberSet": ["+8613800138000"],
        "SmsSdkAppId": "1400000000",
        "SignName": "会员中心",
        "TemplateId": "1110",
        "TemplateParamSet": ["张三", "5"],
    }
    assert request.headers["X-TC-Action"] == "SendSms"
    assert request.headers["X-TC-Version"] == "2021-01-11"
    assert request.headers["X-TC-Region"] == "ap-guangzhou"
    assert request.headers["X-TC-Timestamp"] == str(NOW)
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["Authorization"] == independent_authorization(request.content)


def test_template_params_in_numeric_order() -> None:
    fake = FakeProvider(answer(status("+8613800138000")))
    backend(fake).send_messages([message(**{"2": "b", "10": "c", "1": "a"})])
    assert json.loads(fake.last.content)["TemplateParamSet"] == ["a", "b", "c"]


def test_batches_group_consecutive_messages_of_one_template() -> None:
    a, b, c = "+8613800000001", "+8613800000002", "+8613800000003"
    fake = FakeProvider(
        answer(status(b), status(a, "InvalidParameterValue.IncorrectPhoneNumber")),
        answer(status(c)),
        answer(status(c, serial="second")),
    )
    results = backend(fake).send_messages(
        [message(a), message(b), message(c, template="2220"), message(c, template="2220")]
    )
    # A new template starts a new call, and so does a number already in the batch.
    assert [json.loads(r.content)["PhoneNumberSet"] for r in fake.requests] == [[a, b], [c], [c]]
    assert [(r.ok, r.error_code, r.permanent) for r in results] == [
        (False, "InvalidParameterValue.IncorrectPhoneNumber", True),
        (True, "", False),
        (True, "", False),
        (True, "", False),
    ]


def test_batch_size_is_200() -> None:
    numbers = [f"+86138{i:08d}" for i in range(201)]
    fake = FakeProvider(
        lambda request: answer(*map(status, json.loads(request.content)["PhoneNumberSet"]))(request)
    )
    results = backend(fake).send_messages([message(n) for n in numbers])
    # The two calls go out at once (the backend's concurrency), in either order.
    sizes = sorted(len(json.loads(r.content)["PhoneNumberSet"]) for r in fake.requests)
    assert sizes == [1, 200]
    assert all(r.ok for r in results)


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        ("InvalidParameterValue.IncorrectPhoneNumber", True),
        ("FailedOperation.PhoneNumberInBlacklist", True),
        ("LimitExceeded.PhoneNumberDailyLimit", False),
        ("LimitExceeded.PhoneNumberThirtySecondLimit", False),
        ("FailedOperation.InsufficientBalanceInSmsPackage", False),
    ],
)
def test_status_code_mapping(code: str, permanent: bool) -> None:
    fake = FakeProvider(answer(status("+8613800138000", code)))
    (result,) = backend(fake).send_messages([message()])
    assert (result.ok, result.error_code, result.permanent) == (False, code, permanent)


def test_missing_status_is_retried() -> None:
    (result,) = backend(FakeProvider(answer())).send_messages([message()])
    assert (result.ok, result.error_code, result.permanent) == (False, "no_status", False)


def test_request_error_applies_to_the_whole_batch() -> None:
    body = {"Response": {"Error": {"Code": "RequestLimitExceeded", "Message": "m"}}}
    results = backend(FakeProvider(reply(200, body))).send_messages(
        [message("+8613800000001"), message("+8613800000002")]
    )
    assert [(r.error_code, r.permanent) for r in results] == [("RequestLimitExceeded", False)] * 2


@pytest.mark.parametrize(
    "code", ["AuthFailure.SignatureFailure", "FailedOperation.InsufficientBalanceInSmsPackage"]
)
def test_request_level_account_errors_are_backend_errors(code: str) -> None:
    body = {"Response": {"Error": {"Code": code, "Message": "m"}, "RequestId": "r"}}
    with pytest.raises(BackendError, match=code):
        backend(FakeProvider(reply(200, body))).send_messages([message()])


def test_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(MissingExtra, match=r"django-renewals\[tencent\]"):
        TencentSMSBackend("tc", secret_id="a", secret_key="b", sdk_app_id="c")


@pytest.mark.parametrize(
    "options",
    [
        {"secret_id": "a", "secret_key": "b", "sdk_app_id": "c", "app_id": "d"},
        {"secret_id": "a", "secret_key": "b"},
    ],
)
def test_bad_options_refused(options: dict[str, str]) -> None:
    with pytest.raises(ImproperlyConfigured):
        TencentSMSBackend("tc", **options)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"Response": {"SendStatusSet": [{"PhoneNumber": "+8613800138000", "Code": "Ok"}]}},
            "SerialNo",
        ),
        ({"Response": {"RequestId": "r"}}, "SendStatusSet"),
        ({"Response": "busy"}, "SendStatusSet"),
    ],
)
def test_malformed_success_reply_counts_as_sent(body: dict[str, object], field: str) -> None:
    (result,) = backend(FakeProvider(reply(200, body))).send_messages([message()])
    assert (result.ok, result.permanent, result.error_code) == (True, False, "malformed_reply")
    assert field in result.error_message


def test_a_malformed_status_entry_counts_as_sent() -> None:
    body = {"Response": {"SendStatusSet": ["oops", status("+8613800000002")]}}
    results = backend(FakeProvider(reply(200, body))).send_messages(
        [message("+8613800000001"), message("+8613800000002")]
    )
    assert [(r.ok, r.error_code) for r in results] == [(False, "no_status"), (True, "")]
