import base64
import hashlib
import hmac
import re
import sys

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured

from notifications.backends.twilio import (
    TwilioSMSBackend,
    twilio_signature,
    verify_twilio_signature,
)
from notifications.exceptions import BackendError, MissingExtra
from notifications.messages import SMSMessage

from .providers import FakeProvider, form, reply

SID = "AC0123456789abcdef0123456789abcdef"
CREATED = reply(201, {"sid": "SM1", "status": "queued"})


def backend(fake: FakeProvider, **options: object) -> TwilioSMSBackend:
    options = {"account_sid": SID, "auth_token": "tok", "from_number": "+15005550006", **options}
    return TwilioSMSBackend("tw", transport=fake.transport, **options)


#: The request of twilio-python's RequestValidator tests (tests/unit/test_request_validator.py).
SDK_TOKEN = "12345"
SDK_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
SDK_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
]


def test_signature_matches_the_sdk() -> None:
    assert twilio_signature(SDK_TOKEN, SDK_URL, SDK_PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_a_repeated_parameter_is_signed_as_the_sdk_signs_it() -> None:
    # Sorted by name, then value; the SDK's vector for Digits=5678&Digits=1234.
    params = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert twilio_signature(SDK_TOKEN, SDK_URL, params) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="
    # An identical pair sent twice counts twice, as the SDK's getlist() gives it twice.
    twice = [("Digits", "1234"), ("Digits", "1234")]
    assert twilio_signature("t", "https://x/", twice) == _sha1_b64(
        "t", "https://x/Digits1234Digits1234"
    )


def _sha1_b64(key: str, text: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), text.encode(), hashlib.sha1).digest()).decode()


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        (SDK_URL, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        (SDK_URL, "kvajT1Ptam85bY51eRf/AJRuM3w="),  # Twilio signed it with :443
        (SDK_URL.replace(".com", ".com:1234"), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),  # without port
        (SDK_URL.replace("https", "http"), "0ZXoZLH/DfblKGATFgpif+LLRf4="),  # with :80
        (
            SDK_URL.replace(".com", ".com:1234").replace("https", "http"),
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",  # with the port it names
        ),
    ],
)
def test_verification_accepts_what_the_sdk_accepts(url: str, signature: str) -> None:
    assert verify_twilio_signature(SDK_TOKEN, url, SDK_PARAMS, signature)


@pytest.mark.parametrize(
    "url",
    [SDK_URL.replace("https", "http"), "https://mycompany.com:8443/myapp.php?foo=1&bar=2"],
)
def test_verification_refuses_another_url(url: str) -> None:
    assert not verify_twilio_signature(SDK_TOKEN, url, SDK_PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=")


def test_request() -> None:
    fake = FakeProvider(CREATED)
    results = backend(fake, status_callback="https://example.com/n/receipts/tw/").send_messages(
        [SMSMessage(to="+14155550100", body="Renews on 1 May")]
    )
    assert results[0].ok
    assert results[0].provider_message_id == "SM1"
    request = fake.last
    assert request.method == "POST"
    assert str(request.url) == f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"
    assert (
        request.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{SID}:tok".encode()).decode()
    )
    assert form(request) == {
        "To": "+14155550100",
        "Body": "Renews on 1 May",
        "From": "+15005550006",
        "StatusCallback": "https://example.com/n/receipts/tw/",
    }


def test_api_key_and_messaging_service() -> None:
    fake = FakeProvider(CREATED)
    backend(
        fake,
        auth_token=None,
        api_key_sid="SKabc",
        api_key_secret="sec",
        from_number=None,
        messaging_service_sid="MG1",
    ).send_messages([SMSMessage(to="+14155550100", body="x")])
    assert fake.last.headers["Authorization"] == "Basic " + base64.b64encode(b"SKabc:sec").decode()
    assert form(fake.last) == {"To": "+14155550100", "Body": "x", "MessagingServiceSid": "MG1"}


@pytest.mark.parametrize(
    ("status", "body", "code", "permanent"),
    [
        (400, {"code": 21211, "message": "Invalid 'To' Phone Number"}, "21211", True),
        (
            400,
            {"code": 21614, "message": "'To' number is not a valid mobile number"},
            "21614",
            True,
        ),
        (
            400,
            {"code": 21610, "message": "Attempt to send to unsubscribed recipient"},
            "21610",
            True,
        ),
        (429, {"code": 20429, "message": "Too Many Requests"}, "20429", False),
        (503, None, "503", False),
        (500, {"code": 20500, "message": "Internal Server Error"}, "20500", False),
    ],
)
def test_error_mapping(status: int, body: object, code: str, permanent: bool) -> None:
    fake = FakeProvider(reply(status, body))
    (result,) = backend(fake).send_messages([SMSMessage(to="+14155550100", body="x")])
    assert not result.ok
    assert (result.error_code, result.permanent, result.token_invalid) == (code, permanent, False)


@pytest.mark.parametrize("status", [401, 403])
def test_authentication_failure_is_a_backend_error(status: int) -> None:
    fake = FakeProvider(reply(status, {"code": 20003, "message": "Authenticate"}))
    with pytest.raises(BackendError):
        backend(fake).send_messages([SMSMessage(to="+14155550100", body="x")])


def test_backend_error_after_a_sent_message_marks_the_rest_for_retry() -> None:
    fake = FakeProvider(CREATED, reply(401, {"code": 20003, "message": "Authenticate"}))
    messages = [SMSMessage(to="+14155550100", body="x")] * 3
    results = backend(fake, concurrency=1).send_messages(messages)
    assert [r.ok for r in results] == [True, False, False]
    assert {r.error_code for r in results[1:]} == {"backend_error"}
    assert not any(r.permanent for r in results)
    assert len(fake.requests) == 2


def test_network_error_is_retried() -> None:
    fake = FakeProvider(httpx.ConnectError("refused"))
    (result,) = backend(fake).send_messages([SMSMessage(to="+14155550100", body="x")])
    assert (result.ok, result.permanent, result.error_code) == (False, False, "network_error")


def test_context_manager_keeps_one_client() -> None:
    fake = FakeProvider(CREATED)
    with backend(fake) as open_backend:
        client = open_backend.client
        open_backend.send_messages([SMSMessage(to="+14155550100", body="x")])
        assert open_backend.client is client
    assert open_backend._client is None


def test_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(MissingExtra, match=r"django-renewals\[twilio\]"):
        TwilioSMSBackend("tw", account_sid=SID, auth_token="t", from_number="+15005550006")


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"account_sid": SID, "auth_token": "t", "from_number": "+1", "sender": "x"}, "sender"),
        ({"auth_token": "t", "from_number": "+1"}, "account_sid"),
        ({"account_sid": SID, "from_number": "+1"}, "'auth_token', or 'api_key_sid' and"),
        ({"account_sid": SID, "api_key_sid": "SK1", "from_number": "+1"}, "'api_key_secret'"),
        ({"account_sid": SID, "auth_token": "t"}, "'from_number', or 'messaging_service_sid'"),
        (
            {"account_sid": SID, "auth_token": "t", "api_key_sid": "SK1", "from_number": "+1"},
            "sets ['api_key_sid'] but not ['api_key_secret']",
        ),
    ],
)
def test_bad_options_refused(options: dict[str, str], says: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=re.escape(says)):
        TwilioSMSBackend("tw", **options)


def test_success_reply_without_sid_counts_as_sent() -> None:
    fake = FakeProvider(reply(201, {"status": "queued"}))
    (result,) = backend(fake).send_messages([SMSMessage(to="+14155550100", body="x")])
    assert (result.ok, result.permanent, result.error_code) == (True, False, "malformed_reply")
