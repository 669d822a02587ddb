"""Firebase Cloud Messaging, HTTP v1 API, authenticated with a service account."""

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
    json_object,
)
from .base import PushBackend

API = "https://fcm.googleapis.com/v1/projects/{project_id}/messages:send"
TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

ERRORS = ErrorTable(
    retry=frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"}),
    backend=frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"}),
    token_invalid=frozenset({"UNREGISTERED", "SENDER_ID_MISMATCH"}),
)

#: OAuth2 access tokens per service account, shared by every FCM alias in the process.
access_tokens = TokenCache()


def error_of(body: dict[str, Any]) -> tuple[str, str, bool]:
    """``(code, message, token_is_the_problem)`` of an FCM error response.

    The code is the FcmError ``errorCode`` of the details, else the canonical ``status``.
    ``INVALID_ARGUMENT`` blames the token only when a field violation names
    ``message.token``: otherwise the payload is wrong and the device must stay active.
    """
    error = json_object(body.get("error"))
    code, token_problem = error.get("status") or "UNKNOWN", False
    for detail in error.get("details") or ():
        if detail.get("@type") == FCM_ERROR_TYPE and detail.get("errorCode"):
            code = detail["errorCode"]
        elif detail.get("@type") == BAD_REQUEST_TYPE:
            violations = detail.get("fieldViolations") or ()
            token_problem |= any(v.get("field") == "message.token" for v in violations)
    return code, error.get("message", ""), token_problem


class FCMBackend(HTTPBackend[PushMessage], PushBackend):
    """Sends one notification per ``messages:send`` call.

    Credentials: OPTION ``service_account_info`` (the key file's JSON as a dict) or
    ``service_account_file`` (its path). The access token is fetched with a signed JWT
    (RS256) and cached until a minute before it expires.
    """

    provider = "fcm"
    extra = "fcm"
    requires = ("jwt", "cryptography")
    option_names = HTTP_OPTIONS | {"service_account_info", "service_account_file", "project_id"}
    required_one_of = ((("service_account_info",), ("service_account_file",)),)

    @cached_property
    def service_account(self) -> dict[str, Any]:
        info = self.options.get("service_account_info")
        if info is None:
            with open(self.options["service_account_file"], encoding="utf-8") as f:
                info = json.load(f)
        return dict(info)

    @property
    def project_id(self) -> str:
        return str(self.options.get("project_id") or self.service_account["project_id"])

    def _fetch_access_token(self) -> tuple[str, float]:
        import jwt

        sa = self.service_account
        now = int(time.time())
        assertion = jwt.encode(
            {
                "iss": sa["client_email"],
                "scope": SCOPE,
                "aud": TOKEN_URI,
                "iat": now,
                "exp": now + 3600,
            },
            sa["private_key"],
            algorithm="RS256",
            headers={"kid": sa.get("private_key_id")} if sa.get("private_key_id") else None,
        )
        response = self.client.post(
            TOKEN_URI,
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            },
        )
        body = json_body(response)
        if not response.is_success or "access_token" not in body:
            raise BackendError(f"FCM token exchange failed ({response.status_code}): {body}")
        return body["access_token"], now + int(body.get("expires_in", 3600)) - 60

    def payload(self, message: PushMessage) -> dict[str, Any]:
        data = dict(message.data)
        fcm: dict[str, Any] = {
            "token": message.token,
            "notification": {"title": message.title, "body": message.body},
        }
        if message.url and message.platform == "web":
            fcm["webpush"] = {"fcm_options": {"link": message.url}}
        elif message.url:
            data["url"] = message.url
        if data:
            fcm["data"] = data
        return {"message": fcm}

    def send_one(self, message: PushMessage) -> SendResult:
        key = self.service_account["client_email"]
        url = API.format(project_id=self.project_id)
        for attempt in range(2):
            token = access_tokens.get(key, self._fetch_access_token)
            response = self.client.post(
                url, json=self.payload(message), headers={"Authorization": f"Bearer {token}"}
            )
            body = json_body(response)
            if response.is_success:
                return accepted(body.get("name"), "name")
            code, text, token_problem = error_of(body)
            if code != "UNAUTHENTICATED" or attempt:
                break
            access_tokens.invalidate(key)  # revoked or expired early: fetch a new one once
        if code == "INVALID_ARGUMENT" and token_problem:
            return SendResult.permanent_failure(code, text, token_invalid=True)
        return ERRORS.result(code, text, transient=is_transient(response.status_code))
