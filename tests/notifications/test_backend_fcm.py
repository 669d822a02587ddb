import json
import sys
from base64 import urlsafe_b64decode
from collections.abc import Iterator, Mapping
from urllib.parse import parse_qsl

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.exceptions import ImproperlyConfigured
from freezegun import freeze_time

from notifications.backends import fcm
from notifications.backends.fcm import FCMBackend
from notifications.exceptions import BackendError, MissingExtra
from notifications.messages import PushMessage

from .providers import FakeProvider, Responder, reply

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "club-app",
    "private_key_id": "kid1",
    "private_key": PEM,
    "client_email": "push@club-app.iam.gserviceaccount.com",
    "token_uri": "https://oauth2.googleapis.com/token",
}
SEND_URL = "https://fcm.googleapis.com/v1/projects/club-app/messages:send"
MESSAGE = PushMessage(token="tok-1", title="Renewal", body="Renews on 1 May", data={"k": "v"})
TOKEN = reply(200, {"access_token": "ya29.a", "expires_in": 3599, "token_type": "Bearer"})
SENT = reply(200, {"name": "projects/club-app/messages/0:1"})


@pytest.fixture(autouse=True)
def _empty_token_cache() -> Iterator[None]:
    fcm.access_tokens.clear()
    yield
    fcm.access_tokens.clear()


def backend(fake: FakeProvider, **options: object) -> FCMBackend:
    options = {"service_account_info": SERVICE_ACCOUNT, **options}
    return FCMBackend("fcm", transport=fake.transport, **options)


def error(
    status: int, canonical: str, fcm_code: str | None = None, *extra: Mapping[str, object]
) -> Responder:
    details = [{"@type": fcm.FCM_ERROR_TYPE, "errorCode": fcm_code}] if fcm_code else []
    return reply(
        status,
        {
            "error": {
                "code": status,
                "message": "m",
                "status": canonical,
                "details": [*details, *extra],
            }
        },
    )


@freeze_time("2025-03-01 08:00:00")
def test_token_exchange_and_request() -> None:
    fake = FakeProvider(TOKEN, SENT)
    (result,) = backend(fake).send_messages([MESSAGE])
    assert (result.ok, result.provider_message_id) == (True, "projects/club-app/messages/0:1")
    exchange, send = fake.requests
    assert str(exchange.url) == "https://oauth2.googleapis.com/token"
    body = dict(parse_qsl(exchange.content.decode()))
    assert body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert jwt.get_unverified_header(body["assertion"])["kid"] == "kid1"
    claims = jwt.decode(
        body["assertion"],
        KEY.public_key(),
        algorithms=["RS256"],
        audience="https://oauth2.googleapis.com/token",
    )
    assert claims == {
        "iss": "push@club-app.iam.gserviceaccount.com",
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": "https://oauth2.googleapis.com/token",
        "iat": 1740816000,
        "exp": 1740819600,
    }
    assert str(send.url) == SEND_URL
    assert send.headers["Authorization"] == "Bearer ya29.a"
    assert json.loads(send.content) == {
        "message": {
            "token": "tok-1",
            "notification": {"title": "Renewal", "body": "Renews on 1 May"},
            "data": {"k": "v"},
        }
    }


@freeze_time("2012-02-06 17:53:05")
def test_assertion_is_googles_example() -> None:
    # Google's "Using OAuth 2.0 for Server to Server Applications": header {"alg":"RS256",
    # "typ":"JWT"} (eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9), the claim set in its order, and an
    # RS256 signature (deterministic) over the two.
    fake = FakeProvider(TOKEN, SENT)
    account = {k: v for k, v in SERVICE_ACCOUNT.items() if k != "private_key_id"}
    backend(fake, service_account_info=account).send_messages([MESSAGE])
    assertion = dict(parse_qsl(fake.requests[0].content.decode()))["assertion"]
    header, claims, signature = assertion.split(".")
    assert header == "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9"
    assert json.loads(urlsafe_b64decode(claims + "==")) == {
        "iss": "push@club-app.iam.gserviceaccount.com",
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": "https://oauth2.googleapis.com/token",
        "iat": 1328550785,
        "exp": 1328554385,
    }
    expected = KEY.sign(f"{header}.{claims}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert urlsafe_b64decode(signature + "==") == expected


def test_url_goes_to_data_or_webpush_link() -> None:
    fake = FakeProvider(TOKEN, SENT)
    b = backend(fake, project_id="other")
    b.send_messages([PushMessage(token="t", title="T", body="B", url="https://x.test/m")])
    b.send_messages(
        [PushMessage(token="t", title="T", body="B", url="https://x.test/m", platform="web")]
    )
    android, web = (json.loads(r.content)["message"] for r in fake.requests[1:])
    assert android["data"] == {"url": "https://x.test/m"}
    assert web["webpush"] == {"fcm_options": {"link": "https://x.test/m"}}
    assert "data" not in web
    assert str(fake.last.url) == "https://fcm.googleapis.com/v1/projects/other/messages:send"


def test_access_token_is_cached_until_shortly_before_expiry() -> None:
    fake = FakeProvider(TOKEN, SENT, SENT, TOKEN, SENT)
    with freeze_time("2025-03-01 08:00:00") as clock:
        backend(fake).send_messages([MESSAGE])
        backend(fake).send_messages([MESSAGE])  # a new instance shares the cache
        assert [r.url.host for r in fake.requests].count("oauth2.googleapis.com") == 1
        clock.tick(3599 - 60)
        backend(fake).send_messages([MESSAGE])
    assert [r.url.host for r in fake.requests].count("oauth2.googleapis.com") == 2


def test_rejected_access_token_is_fetched_again_once() -> None:
    unauthenticated = error(401, "UNAUTHENTICATED")
    fake = FakeProvider(TOKEN, unauthenticated, TOKEN, SENT)
    (result,) = backend(fake).send_messages([MESSAGE])
    assert result.ok
    fake = FakeProvider(TOKEN, unauthenticated, TOKEN, unauthenticated)
    fcm.access_tokens.clear()
    with pytest.raises(BackendError, match="UNAUTHENTICATED"):
        backend(fake).send_messages([MESSAGE])
    assert len(fake.requests) == 4


def test_failed_token_exchange_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="token exchange"):
        backend(FakeProvider(reply(400, {"error": "invalid_grant"}))).send_messages([MESSAGE])


TOKEN_VIOLATION = {
    "@type": fcm.BAD_REQUEST_TYPE,
    "fieldViolations": [{"field": "message.token", "description": "Invalid registration token"}],
}
PAYLOAD_VIOLATION = {
    "@type": fcm.BAD_REQUEST_TYPE,
    "fieldViolations": [{"field": "message.data[0].key", "description": "Invalid data key"}],
}


@pytest.mark.parametrize(
    ("answer", "code", "permanent", "token_invalid"),
    [
        (error(404, "NOT_FOUND", "UNREGISTERED"), "UNREGISTERED", True, True),
        (error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), "SENDER_ID_MISMATCH", True, True),
        (
            error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", TOKEN_VIOLATION),
            "INVALID_ARGUMENT",
            True,
            True,
        ),
        (
            error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", PAYLOAD_VIOLATION),
            "INVALID_ARGUMENT",
            True,
            False,
        ),
        (
            error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
            "THIRD_PARTY_AUTH_ERROR",
            True,
            False,
        ),
        (error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"), "QUOTA_EXCEEDED", False, False),
        (error(503, "UNAVAILABLE", "UNAVAILABLE"), "UNAVAILABLE", False, False),
        (error(500, "INTERNAL", "INTERNAL"), "INTERNAL", False, False),
        (reply(502), "UNKNOWN", False, False),
    ],
)
def test_error_mapping(answer: Responder, code: str, permanent: bool, token_invalid: bool) -> None:
    fake = FakeProvider(TOKEN, answer)
    (result,) = backend(fake).send_messages([MESSAGE])
    assert not result.ok
    assert (result.error_code, result.permanent, result.token_invalid) == (
        code,
        permanent,
        token_invalid,
    )


def test_service_account_file(tmp_path: object) -> None:
    path = tmp_path / "sa.json"  # type: ignore[operator]
    path.write_text(json.dumps(SERVICE_ACCOUNT))
    fake = FakeProvider(TOKEN, SENT)
    (result,) = backend(
        fake, service_account_info=None, service_account_file=str(path)
    ).send_messages([MESSAGE])
    assert result.ok


@pytest.mark.parametrize("module", ["httpx", "jwt"])
def test_missing_extra(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtra, match=r"django-renewals\[fcm\]"):
        FCMBackend("fcm", service_account_info=SERVICE_ACCOUNT)


@pytest.mark.parametrize("options", [{}, {"service_account_info": SERVICE_ACCOUNT, "api_key": "x"}])
def test_bad_options_refused(options: dict[str, object]) -> None:
    with pytest.raises(ImproperlyConfigured):
        FCMBackend("fcm", **options)


def test_success_reply_without_name_counts_as_sent() -> None:
    (result,) = backend(FakeProvider(TOKEN, reply(200, {}))).send_messages([MESSAGE])
    assert (result.ok, result.permanent, result.error_code) == (True, False, "malformed_reply")


def test_error_that_is_not_an_object_is_read_by_status() -> None:
    fake = FakeProvider(TOKEN, reply(503, {"error": "Service Unavailable"}))
    (result,) = backend(fake).send_messages([MESSAGE])
    assert (result.ok, result.permanent, result.error_code) == (False, False, "UNKNOWN")
