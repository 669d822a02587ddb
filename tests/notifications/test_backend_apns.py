import json
import sys
from base64 import urlsafe_b64decode
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ImproperlyConfigured
from freezegun import freeze_time

from notifications.backends import apns
from notifications.backends.apns import APNsBackend
from notifications.exceptions import BackendError, MissingExtra
from notifications.messages import PushMessage

from .providers import FakeProvider, reply

KEY = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
TOKEN = "a" * 64
MESSAGE = PushMessage(
    token=TOKEN, title="Renewal", body="Renews on 1 May", platform="ios", data={"k": "v"}
)
SENT = reply(200, headers={"apns-id": "5E1D7A1B-0000-0000-0000-000000000001"})


@pytest.fixture(autouse=True)
def _empty_token_cache() -> Iterator[None]:
    apns.provider_tokens.clear()
    yield
    apns.provider_tokens.clear()


def backend(fake: FakeProvider, **options: object) -> APNsBackend:
    options = {
        "team_id": "TEAM123456",
        "key_id": "KEY1234567",
        "private_key": PEM,
        "bundle_id": "com.example.club",
        **options,
    }
    return APNsBackend("apns", transport=fake.transport, **options)


def bearer(request: httpx.Request) -> str:
    return request.headers["authorization"].removeprefix("bearer ")


@freeze_time("2025-03-01 08:00:00")
def test_request() -> None:
    fake = FakeProvider(SENT)
    (result,) = backend(fake).send_messages([MESSAGE])
    assert (result.ok, result.provider_message_id) == (True, "5E1D7A1B-0000-0000-0000-000000000001")
    request = fake.last
    assert str(request.url) == f"https://api.push.apple.com/3/device/{TOKEN}"
    assert request.headers["apns-topic"] == "com.example.club"
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == "10"
    assert request.headers["apns-expiration"] == str(1740816000 + 86400)
    assert json.loads(request.content) == {
        "aps": {"alert": {"title": "Renewal", "body": "Renews on 1 May"}},
        "k": "v",
    }
    token = bearer(request)
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "KEY1234567"}
    assert jwt.decode(token, KEY.public_key(), algorithms=["ES256"]) == {
        "iss": "TEAM123456",
        "iat": 1740816000,
    }


@freeze_time("2015-07-18 00:23:56")
def test_provider_token_is_apples_example() -> None:
    # Apple's "Establishing a token-based connection to APNs": the header holds exactly alg and
    # kid, the claims iss and iat, and the token is signed with ES256.
    fake = FakeProvider(SENT)
    backend(fake, team_id="DEF123GHIJ", key_id="ABC123DEFG").send_messages([MESSAGE])
    header, claims, _ = bearer(fake.last).split(".")
    assert urlsafe_b64decode(header + "==") == b'{"alg":"ES256","kid":"ABC123DEFG"}'
    assert urlsafe_b64decode(claims + "==") == b'{"iss":"DEF123GHIJ","iat":1437179036}'
    jwt.decode(bearer(fake.last), KEY.public_key(), algorithms=["ES256"])


def test_sandbox_priority_ttl_and_url() -> None:
    fake = FakeProvider(SENT)
    with freeze_time("2025-03-01 08:00:00"):
        backend(fake, use_sandbox=True, priority=5, time_to_live=600).send_messages(
            [PushMessage(token=TOKEN, title="T", body="B", url="https://x.test/m")]
        )
    assert fake.last.url.host == "api.sandbox.push.apple.com"
    assert fake.last.headers["apns-priority"] == "5"
    assert fake.last.headers["apns-expiration"] == str(1740816000 + 600)
    assert json.loads(fake.last.content)["url"] == "https://x.test/m"


def test_provider_token_reused_then_refreshed_before_an_hour() -> None:
    fake = FakeProvider(SENT)
    with freeze_time("2025-03-01 08:00:00") as clock:
        backend(fake).send_messages([MESSAGE])
        clock.tick(49 * 60)
        backend(fake).send_messages([MESSAGE])
        clock.tick(2 * 60)
        backend(fake).send_messages([MESSAGE])
    first, second, third = map(bearer, fake.requests)
    assert first == second
    assert third != first
    assert jwt.decode(third, KEY.public_key(), algorithms=["ES256"])["iat"] == 1740816000 + 51 * 60


def test_expired_provider_token_is_refreshed_once() -> None:
    expired = reply(403, {"reason": "ExpiredProviderToken"})
    fake = FakeProvider(expired, SENT)
    with freeze_time("2025-03-01 08:00:00") as clock:
        apns.provider_tokens.get(("TEAM123456", "KEY1234567"), lambda: ("stale", 1e12))
        clock.tick(1)
        (result,) = backend(fake).send_messages([MESSAGE])
    assert result.ok
    assert bearer(fake.requests[0]) == "stale"
    assert bearer(fake.requests[1]) != "stale"

    fake = FakeProvider(expired, reply(403, {"reason": "InvalidProviderToken"}))
    with pytest.raises(BackendError, match="InvalidProviderToken"):
        backend(fake).send_messages([MESSAGE])
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("status", "reason", "permanent", "token_invalid"),
    [
        (410, "Unregistered", True, True),
        (400, "BadDeviceToken", True, True),
        (400, "DeviceTokenNotForTopic", True, True),
        (413, "PayloadTooLarge", True, False),
        (429, "TooManyRequests", False, False),
        (503, "ServiceUnavailable", False, False),
        (500, "InternalServerError", False, False),
    ],
)
def test_error_mapping(status: int, reason: str, permanent: bool, token_invalid: bool) -> None:
    (result,) = backend(FakeProvider(reply(status, {"reason": reason}))).send_messages([MESSAGE])
    assert not result.ok
    assert (result.error_code, result.permanent, result.token_invalid) == (
        reason,
        permanent,
        token_invalid,
    )


@pytest.mark.parametrize(("status", "reason"), [(403, "BadCertificate"), (400, "TopicDisallowed")])
def test_configuration_errors_are_backend_errors(status: int, reason: str) -> None:
    with pytest.raises(BackendError, match=reason):
        backend(FakeProvider(reply(status, {"reason": reason}))).send_messages([MESSAGE])


def test_private_key_file(tmp_path: object) -> None:
    path = tmp_path / "AuthKey.p8"  # type: ignore[operator]
    path.write_text(PEM)
    fake = FakeProvider(SENT)
    (result,) = backend(fake, private_key=None, private_key_file=str(path)).send_messages([MESSAGE])
    assert result.ok


@pytest.mark.parametrize("module", ["httpx", "h2", "jwt"])
def test_missing_extra(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtra, match=r"django-renewals\[apns\]"):
        APNsBackend("apns", team_id="T", key_id="K", private_key=PEM, bundle_id="b")


@pytest.mark.parametrize(
    "options",
    [
        {"team_id": "T", "key_id": "K", "bundle_id": "b"},
        {"team_id": "T", "key_id": "K", "private_key": "p", "bundle_id": "b", "topic": "x"},
        {"key_id": "K", "private_key": "p", "bundle_id": "b"},
    ],
)
def test_bad_options_refused(options: dict[str, str]) -> None:
    with pytest.raises(ImproperlyConfigured):
        APNsBackend("apns", **options)


def test_success_reply_without_apns_id_counts_as_sent() -> None:
    (result,) = backend(FakeProvider(reply(200))).send_messages([MESSAGE])
    assert (result.ok, result.permanent, result.error_code) == (True, False, "malformed_reply")
