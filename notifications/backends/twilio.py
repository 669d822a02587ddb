"""Twilio Programmable Messaging (SMS), with signed status callbacks as receipts."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from django.core.exceptions import BadRequest
from django.http import HttpRequest

from ..exceptions import BackendError, InvalidSignature
from ..messages import Receipt, SendResult, SMSMessage
from ._http import HTTP_OPTIONS, ErrorTable, HTTPBackend, accepted, is_transient, json_body
from ._receipts import ReceiptsMixin
from .base import SMSBackend

API = "https://api.twilio.com/2010-04-01/Accounts/{account_sid}/Messages.json"

ReceiptStatus = Literal["sent", "delivered", "undelivered", "failed"]

ERRORS = ErrorTable(
    retry=frozenset({"20429"}),  # too many requests
    backend=frozenset({"20003", "20404"}),  # authentication failed; account not found
)

#: Twilio's ``MessageStatus`` values that are receipts; the rest (queued, sending…) are not.
RECEIPT_STATUSES: dict[str, ReceiptStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
}


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """``X-Twilio-Signature``: HMAC-SHA1 over the URL and the name+value pairs sorted by name,
    then value; a pair sent twice counts twice, as in twilio-python's ``RequestValidator``."""
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_url_forms(url: str) -> tuple[str, str]:
    """``url`` without its port and with it (the scheme's default if it names none): Twilio
    signs either form, and twilio-python's ``RequestValidator`` accepts both."""
    parts = urlsplit(url)
    host, colon, port = parts.netloc.rpartition(":")
    if not (colon and port.isdigit()):  # no port ("[::1]" has colons but no port)
        host, port = parts.netloc, "443" if parts.scheme == "https" else "80"
    return (
        urlunsplit(parts._replace(netloc=host)),
        urlunsplit(parts._replace(netloc=f"{host}:{port}")),
    )


def verify_twilio_signature(
    auth_token: str, url: str, params: Sequence[tuple[str, str]], signature: str
) -> bool:
    """Whether ``signature`` signs the request to ``url`` with ``params``."""
    return any(
        hmac.compare_digest(signature.encode(), twilio_signature(auth_token, form, params).encode())
        for form in signed_url_forms(url)
    )


class TwilioSMSBackend(ReceiptsMixin, HTTPBackend[SMSMessage], SMSBackend):
    """Sends through ``POST /2010-04-01/Accounts/{sid}/Messages.json``.

    Authenticates with the account SID and auth token, or an API key SID and secret (the auth
    token is still needed to verify status callbacks). Sends from ``from_number`` or through
    ``messaging_service_sid``.
    """

    provider = "twilio"
    extra = "twilio"
    option_names = HTTP_OPTIONS | {
        "account_sid",
        "auth_token",
        "api_key_sid",
        "api_key_secret",
        "from_number",
        "messaging_service_sid",
        "status_callback",
        "webhook_url_base",
    }
    required_one_of = (
        (("auth_token",), ("api_key_sid", "api_key_secret")),
        (("from_number",), ("messaging_service_sid",)),
    )
    required_options = frozenset({"account_sid"})

    def send_one(self, message: SMSMessage) -> SendResult:
        o = self.options
        data = {"To": message.to, "Body": message.body}
        if o.get("messaging_service_sid"):
            data["MessagingServiceSid"] = o["messaging_service_sid"]
        else:
            data["From"] = o["from_number"]
        if o.get("status_callback"):
            data["StatusCallback"] = o["status_callback"]
        if o.get("api_key_sid"):
            auth = (o["api_key_sid"], o.get("api_key_secret", ""))
        else:
            auth = (o["account_sid"], o["auth_token"])
        response = self.client.post(API.format(account_sid=o["account_sid"]), data=data, auth=auth)
        body = json_body(response)
        if response.is_success:
            return accepted(body.get("sid"), "sid")
        if response.status_code == 401:
            raise BackendError(f"Twilio refused the credentials: {body.get('message', '')}")
        code = str(body.get("code") or response.status_code)
        return ERRORS.result(
            code, body.get("message", ""), transient=is_transient(response.status_code)
        )

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        auth_token = self.options.get("auth_token")
        if not auth_token:
            raise InvalidSignature(f"{self.alias!r} has no auth_token to verify callbacks.")
        base = self.options.get("webhook_url_base")
        url = base.rstrip("/") + request.get_full_path() if base else request.build_absolute_uri()
        params = [(name, value) for name, values in request.POST.lists() for value in values]
        signature = request.headers.get("X-Twilio-Signature", "")
        if not verify_twilio_signature(auth_token, url, params, signature):
            raise InvalidSignature(f"Twilio status callback for {self.alias!r} is not signed.")
        sid, status = request.POST.get("MessageSid"), request.POST.get("MessageStatus")
        if not sid or not status:
            raise BadRequest("Twilio status callback without MessageSid or MessageStatus.")
        if status not in RECEIPT_STATUSES:
            return []
        return [
            Receipt(
                provider_message_id=sid,
                status=RECEIPT_STATUSES[status],
                error_code=request.POST.get("ErrorCode", ""),
            )
        ]
