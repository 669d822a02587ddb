import base64
import json
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from notifications.backends.jpush import JPushBackend
from notifications.exceptions import BackendError, MissingExtra
from notifications.messages import PushMessage

from .providers import FakeProvider, reply

SENT = reply(200, {"sendno": "0", "msg_id": 54043405})
ANDROID = PushMessage(token="160a3797c8", title="Renewal", body="Renews on 1 May", data={"k": "v"})
VENDORS = {
    "huawei": {"distribution": "first_ospush", "importance": "NORMAL", "category": "ACCOUNT"},
    "xiaomi": {"distribution": "first_ospush", "channel_id": "renewals"},
    "oppo": {"distribution": "first_ospush", "channel_id": "renewals"},
    "vivo": {"distribution": "secondary_push", "classification": 1},
}


def backend(fake: FakeProvider, **options: object) -> JPushBackend:
    return JPushBackend(
        "jp", app_key="appkey", master_secret="secret", transport=fake.transport, **options
    )


def test_authorization_matches_the_published_example() -> None:
    # The example of JPush's REST API documentation ("调用验证"): Basic base64(appKey:masterSecret).
    fake = FakeProvider(SENT)
    JPushBackend(
        "jp",
        app_key="7d431e42dfa6a6d693ac2d04",
        master_secret="5e987ac6d2e04d95a9d8f0d1",
        transport=fake.transport,
    ).send_messages([ANDROID])
    assert fake.last.headers["Authorization"] == (
        "Basic N2Q0MzFlNDJkZmE2YTZkNjkzYWMyZDA0OjVlOTg3YWM2ZDJlMDRkOTVhOWQ4ZjBkMQ=="
    )


def test_android_request_with_vendor_channels() -> None:
    fake = FakeProvider(SENT)
    (result,) = backend(fake, vendor_channels=VENDORS, time_to_live=3600).send_messages([ANDROID])
    assert (result.ok, result.provider_message_id) == (True, "54043405")
    request = fake.last
    assert str(request.url) == "https://api.jpush.cn/v3/push"
    assert (
        request.headers["Authorization"] == "Basic " + base64.b64encode(b"appkey:secret").decode()
    )
    assert json.loads(request.content) == {
        "platform": ["android"],
        "audience": {"registration_id": ["160a3797c8"]},
        "notification": {
            "android": {"alert": "Renews on 1 May", "title": "Renewal", "extras": {"k": "v"}}
        },
        "options": {"apns_production": True, "time_to_live": 3600, "third_party_channel": VENDORS},
    }


def test_ios_request() -> None:
    fake = FakeProvider(SENT)
    message = PushMessage(token="r1", title="T", body="B", platform="ios", url="https://x.test/m")
    backend(fake, apns_production=False, vendor_channels=VENDORS).send_messages([message])
    assert json.loads(fake.last.content) == {
        "platform": ["ios"],
        "audience": {"registration_id": ["r1"]},
        "notification": {
            "ios": {"alert": {"title": "T", "body": "B"}, "extras": {"url": "https://x.test/m"}}
        },
        "options": {"apns_production": False},
    }


def test_unsupported_platform_fails_permanently() -> None:
    fake = FakeProvider(SENT)
    (result,) = backend(fake).send_messages(
        [PushMessage(token="t", title="T", body="B", platform="web")]
    )
    assert (result.ok, result.permanent) == (False, True)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("status", "code", "permanent", "token_invalid"),
    [
        (400, 1011, True, True),
        (400, 1003, True, False),
        (400, 1002, True, False),
        (429, 2002, False, False),
        (400, 2008, False, False),
        (500, 1000, False, False),
    ],
)
def test_error_mapping(status: int, code: int, permanent: bool, token_invalid: bool) -> None:
    fake = FakeProvider(reply(status, {"error": {"code": code, "message": "m"}, "msg_id": "1"}))
    (result,) = backend(fake).send_messages([ANDROID])
    assert not result.ok
    assert (result.error_code, result.permanent, result.token_invalid) == (
        str(code),
        permanent,
        token_invalid,
    )


def test_bare_server_error_is_retried() -> None:
    (result,) = backend(FakeProvider(reply(503))).send_messages([ANDROID])
    assert (result.error_code, result.permanent) == ("503", False)


@pytest.mark.parametrize("code", [1004, 1008])
def test_authentication_errors_are_backend_errors(code: int) -> None:
    fake = FakeProvider(reply(401, {"error": {"code": code, "message": "m"}}))
    with pytest.raises(BackendError, match=str(code)):
        backend(fake).send_messages([ANDROID])


def test_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(MissingExtra, match=r"django-renewals\[jpush\]"):
        JPushBackend("jp", app_key="a", master_secret="b")


@pytest.mark.parametrize(
    "options",
    [
        {"app_key": "a", "master_secret": "b", "production": True},
        {"app_key": "a"},
        {"app_key": "a", "master_secret": "b", "vendor_channels": {"nokia": {}}},
        {"app_key": "a", "master_secret": "b", "vendor_channels": {"vivo": {"distribution": "x"}}},
    ],
)
def test_bad_options_refused(options: dict[str, object]) -> None:
    with pytest.raises(ImproperlyConfigured):
        JPushBackend("jp", **options)


def test_success_reply_without_msg_id_counts_as_sent() -> None:
    (result,) = backend(FakeProvider(reply(200, {"sendno": "0"}))).send_messages([ANDROID])
    assert (result.ok, result.permanent, result.error_code) == (True, False, "malformed_reply")


def test_error_that_is_not_an_object_is_read_by_status() -> None:
    fake = FakeProvider(reply(502, {"error": "Bad Gateway"}))
    (result,) = backend(fake).send_messages([ANDROID])
    assert (result.ok, result.permanent, result.error_code) == (False, False, "502")
