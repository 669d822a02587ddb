"""Apple Push Notification service over HTTP/2, with token-based (JWT ES256) auth."""

from __future__ import annotations

import json
import time
from functools import cached_property
from typing import Any

from ..exceptions import BackendError
from ..messages import PushMessage, SendResult
from ._http import (
    HTTP_OPTIONS,
    ErrorTable,
    HTTPBackend,
    TokenCache,
    accepted,
    is_transient,
    json_body,
)
from .base import PushBackend

PRODUCTION_HOST = "api.push.apple.com"
SANDBOX_HOST = "api.sandbox.push.apple.com"
#: Apple refuses tokens older than an hour and refreshes more often than every 20 minutes.
TOKEN_LIFETIME = 50 * 60
PROVIDER_TOKEN_ERRORS = frozenset({"ExpiredProviderToken", "InvalidProviderToken"})

ERRORS = ErrorTable(
    retry=frozenset({"TooManyRequests", "InternalServerError", "ServiceUnavailable", "Shutdown"}),
    backend=frozenset({"BadTopic", "MissingTopic", "TopicDisallowed"}),  # bundle_id is wrong
    token_invalid=frozenset({"Unregistered", "BadDeviceToken", "DeviceTokenNotForTopic"}),
)

#: Provider JWTs per (team, key), shared by every APNs alias in the process.
provider_tokens = TokenCache()


class APNsBackend(HTTPBackend[PushMessage], PushBackend):
    """Sends one alert per ``POST /3/device/{token}`` on one HTTP/2 connection.

    The provider token (``kid`` = key id, ``iss`` = team id, ``iat``) is signed with the
    ``.p8`` key (OPTION ``private_key`` as PEM text, or ``private_key_file``) and reused for
    50 minutes. A push rejected with ExpiredProviderToken/InvalidProviderToken gets a fresh
    token once; a second rejection raises :class:`~notifications.exceptions.BackendError`.
    """

    provider = "apns"
    extra = "apns"
    http2 = True
    requires = ("h2", "jwt", "cryptography")
    option_names = HTTP_OPTIONS | {
        "team_id",
        "key_id",
        "private_key",
        "private_key_file",
        "bundle_id",
        "use_sandbox",
        "priority",
        "time_to_live",
    }
    required_one_of = ((("private_key",), ("private_key_file",)),)
    required_options = frozenset({"team_id", "key_id", "bundle_id"})

    @cached_property
    def signing_key(self) -> str:
        if self.options.get("private_key"):
            return str(self.options["private_key"])
        with open(self.options["private_key_file"], encoding="utf-8") as f:
            return f.read()

    def _new_provider_token(self) -> tuple[str, float]:
        import jwt

        now = int(time.time())
        token = jwt.encode(
            {"iss": self.options["team_id"], "iat": now},
            self.signing_key,
            algorithm="ES256",
            headers={"kid": self.options["key_id"], "typ": None},  # Apple's header: alg and kid
        )
        return token, now + TOKEN_LIFETIME

    def payload(self, message: PushMessage) -> dict[str, Any]:
        extra: dict[str, Any] = {**message.data, **({"url": message.url} if message.url else {})}
        return {"aps": {"alert": {"title": message.title, "body": message.body}}, **extra}

    def send_one(self, message: PushMessage) -> SendResult:
        o = self.options
        host = SANDBOX_HOST if o.get("use_sandbox") else PRODUCTION_HOST
        key = (o["team_id"], o["key_id"])
        content = json.dumps(self.payload(message), ensure_ascii=False).encode()
        for attempt in range(2):
            headers = {
                "authorization": f"bearer {provider_tokens.get(key, self._new_provider_token)}",
                "apns-topic": o["bundle_id"],
                "apns-push-type": "alert",
                "apns-priority": str(o.get("priority", 10)),
                "apns-expiration": str(int(time.time()) + int(o.get("time_to_live", 86400))),
            }
            response = self.client.post(
                f"https://{host}/3/device/{message.token}", content=content, headers=headers
            )
            reason = json_body(response).get("reason", "")
            if response.status_code != 403 or reason not in PROVIDER_TOKEN_ERRORS or attempt:
                break
            provider_tokens.invalidate(key)
        if response.status_code == 200:
            return accepted(response.headers.get("apns-id"), "apns-id")
        code = reason or str(response.status_code)
        if response.status_code == 403:  # the key, team or token: every push would fail
            raise BackendError(f"APNs refused the provider token: {code}")
        return ERRORS.result(code, transient=is_transient(response.status_code))
