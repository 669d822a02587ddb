import base64
import hashlib
import hmac
import json
import sys
from urllib.parse import quote

import pytest
from django.core.exceptions import ImproperlyConfigured
from freezegun import freeze_time

from notifications.backends.aliyun import AliyunSMSBackend, rpc_signature
from notifications.exceptions import BackendError, MissingExtra
from notifications.message_templates import registered
from notifications.messages import SMSMessage

from .providers import FakeProvider, form, reply

OK = reply(200, {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "r"})
MESSAGE = SMSMessage(
    to="+8613800138000",
    body="",
    template_code="SMS_123",
    template_params={"name": "张三", "date": "5月1日"},
    sign_name="会员中心",
)


def backend(fake: FakeProvider, **options: object) -> AliyunSMSBackend:
    return AliyunSMSBackend(
        "ali",
        access_key_id="testId",
        access_key_secret="testSecret",
        transport=fake.transport,
        **options,
    )


def independent_signature(secret: str, method: str, params: dict[str, str]) -> str:
    """The documented algorithm, written out again: sort, percent-encode, HMAC-SHA1."""

    def enc(s: str) -> str:
        return quote(s.encode("utf-8"), safe="-_.~")

    canonical = "&".join(enc(k) + "=" + enc(params[k]) for k in sorted(params))
    to_sign = method + "&" + enc("/") + "&" + enc(canonical)
    mac = hmac.new((secret + "&").encode(), to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def test_signature_matches_the_published_example() -> None:
    # The worked example of Alibaba Cloud's SMS signature documentation.
    params = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert rpc_signature("testSecret", "GET", params) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


@freeze_time("2025-03-01 08:00:00")
def test_request() -> None:
    fake = FakeProvider(OK)
    (result,) = backend(fake).send_messages([MESSAGE])
    assert result.ok
    assert result.provider_message_id == "900619746936498440^0"
    assert str(fake.last.url) == "https://dysmsapi.aliyuncs.com/"
    sent = form(fake.last)
    signature = sent.pop("Signature")
    nonce = sent.pop("SignatureNonce")
    assert len(nonce) == 32
    assert sent == {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "JSON",
        "RegionId": "cn-hangzhou",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "Timestamp": "2025-03-01T08:00:00Z",
        "Version": "2017-05-25",
        "PhoneNumbers": "13800138000",
        "SignName": "会员中心",
        "TemplateCode": "SMS_123",
        "TemplateParam": '{"name":"张三","date":"5月1日"}',
    }
    assert json.loads(sent["TemplateParam"]) == MESSAGE.template_params
    assert signature == independent_signature(
        "testSecret", "POST", {**sent, "SignatureNonce": nonce}
    )


def test_international_number_keeps_its_country_code_and_option_sign_name() -> None:
    fake = FakeProvider(OK)
    message = SMSMessage(to="+85291234567", body="", template_code="SMS_9")
    backend(fake, sign_name="Club", endpoint="dysmsapi.ap-southeast-1.aliyuncs.com").send_messages(
        [message]
    )
    sent = form(fake.last)
    assert (sent["PhoneNumbers"], sent["SignName"]) == ("85291234567", "Club")
    assert "TemplateParam" not in sent
    assert fake.last.url.host == "dysmsapi.ap-southeast-1.aliyuncs.com"


@pytest.mark.parametrize(
    ("code", "permanent"),
    [
        ("isv.MOBILE_NUMBER_ILLEGAL", True),
        ("isv.SMS_TEMPLATE_ILLEGAL", True),
        ("isv.SMS_SIGNATURE_ILLEGAL", True),
        ("isv.BUSINESS_LIMIT_CONTROL", False),
        ("Throttling.User", False),
        ("isp.SYSTEM_ERROR", False),
    ],
)
def test_error_mapping(code: str, permanent: bool) -> None:
    fake = FakeProvider(reply(200, {"Code": code, "Message": "m", "RequestId": "r"}))
    (result,) = backend(fake).send_messages([MESSAGE])
    assert (result.ok, result.error_code, result.permanent) == (False, code, permanent)


def test_server_error_is_retried() -> None:
    (result,) = backend(FakeProvider(reply(502))).send_messages([MESSAGE])
    assert (result.error_code, result.permanent) == ("502", False)


@pytest.mark.parametrize(
    "code", ["isv.AMOUNT_NOT_ENOUGH", "InvalidAccessKeyId.NotFound", "SignatureDoesNotMatch"]
)
def test_account_errors_are_backend_errors(code: str) -> None:
    fake = FakeProvider(reply(400, {"Code": code, "Message": "m"}))
    with pytest.raises(BackendError, match=code):
        backend(fake).send_messages([MESSAGE])


@pytest.mark.parametrize(
    "message",
    [
        SMSMessage(to="+8613800138000", body="no template"),
        SMSMessage(to="13800138000", body="", template_code="SMS_1", sign_name="S"),
    ],
)
def test_unsendable_message_fails_permanently_without_a_call(message: SMSMessage) -> None:
    fake = FakeProvider(OK)
    (result,) = backend(fake).send_messages([message])
    assert (result.ok, result.permanent) == (False, True)
    assert fake.requests == []


def test_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(MissingExtra, match=r"django-renewals\[aliyun\]"):
        AliyunSMSBackend("ali", access_key_id="a", access_key_secret="b")


def test_unknown_option_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="signature_name"):
        AliyunSMSBackend("ali", access_key_id="a", access_key_secret="b", signature_name="x")


def test_check_warns_without_receipt_token() -> None:
    codes = {template.key: "SMS_1" for template in registered()}
    backend = AliyunSMSBackend(
        "ali", access_key_id="a", access_key_secret="b", template_codes=codes
    )
    assert [m.id for m in backend.check()] == ["notifications.W101"]
    backend = AliyunSMSBackend(
        "ali", access_key_id="a", access_key_secret="b", receipt_token="t", template_codes=codes
    )
    assert backend.check() == []


def test_check_warns_of_a_template_without_a_code() -> None:
    backend = AliyunSMSBackend(
        "ali",
        access_key_id="a",
        access_key_secret="b",
        receipt_token="t",
        template_codes={"renewals.reminder": "SMS_1"},
    )
    warnings = [m.msg for m in backend.check() if m.id == "notifications.W102"]
    assert any("'renewals.cancelled'" in msg for msg in warnings)
    assert not any("'renewals.reminder'" in msg for msg in warnings)
    assert backend.template_code_for("renewals.reminder") == "SMS_1"
    assert backend.template_code_for("other") is None


@pytest.mark.parametrize("codes", [["SMS_1"], {"renewals.reminder": ""}, {"k": 5}])
def test_template_codes_must_map_keys_to_codes(codes: object) -> None:
    with pytest.raises(ImproperlyConfigured, match="template_codes"):
        AliyunSMSBackend("ali", access_key_id="a", access_key_secret="b", template_codes=codes)


@pytest.mark.django_db
def test_dispatch_sends_the_approved_template_with_its_code_and_params() -> None:
    from notifications.dispatch import Notification, send

    from .helpers import configure, phone_recipient

    fake = FakeProvider(OK)
    aliyun = {
        "BACKEND": "notifications.backends.aliyun.AliyunSMSBackend",
        "OPTIONS": {
            "access_key_id": "testId",
            "access_key_secret": "testSecret",
            "sign_name": "会员中心",
            "template_codes": {"tests.greeting": "SMS_777"},
            "transport": fake.transport,
        },
    }
    with configure(BACKENDS={"aliyun": aliyun}, CHANNELS={"sms": "aliyun"}):
        result = send(
            phone_recipient(),
            Notification("tests.greeting", {"name": "Ann", "code": "42"}),
            channels=["sms"],
            idempotency_key="greeting-1",
        )
    assert result.accepted
    sent = form(fake.last)
    assert sent["TemplateCode"] == "SMS_777"
    assert json.loads(sent["TemplateParam"]) == {"n": "Ann"}
    assert sent["PhoneNumbers"] == "13812345678"
    assert result.deliveries[0].provider_message_id == "900619746936498440^0"


@pytest.mark.parametrize("body", [{"Code": "OK", "RequestId": "r"}, {"Code": "OK", "BizId": None}])
def test_success_reply_without_biz_id_counts_as_sent(body: dict[str, object]) -> None:
    (result,) = backend(FakeProvider(reply(200, body))).send_messages([MESSAGE])
    assert (result.ok, result.permanent, result.error_code) == (True, False, "malformed_reply")
    assert "BizId" in result.error_message
