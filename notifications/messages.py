"""What a backend sends, and what it reports back for each message."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from .phone import masked_repr


@dataclass(frozen=True)
class SMSMessage:
    """One text message to one E.164 number.

    ``body`` is the rendered text. Providers that only send pre-approved templates (Aliyun,
    Tencent) use ``template_code`` and ``template_params`` instead and may ignore ``body``.
    """

    to: str
    body: str
    template_code: str | None = None
    template_params: dict[str, str] = field(default_factory=dict)
    sign_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return masked_repr(self, "to")


@dataclass(frozen=True)
class PushMessage:
    """One notification to one device token."""

    token: str
    title: str
    body: str
    platform: str = "android"  # ios / android / web / harmony
    data: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EmailMessage:
    """One email to one address: a subject, the plain text and its HTML alternative."""

    to: str
    subject: str
    body: str
    html: str
    metadata: dict[str, Any] = field(default_factory=dict)


Message = SMSMessage | PushMessage | EmailMessage


@dataclass(frozen=True)
class SendResult:
    """The outcome of handing one message to a provider.

    ``ok`` means the provider accepted it (``provider_message_id`` names it); otherwise
    ``permanent`` says whether retrying can help and ``token_invalid`` that a push token is
    no longer registered (its device is deactivated).
    """

    ok: bool
    provider_message_id: str = ""
    error_code: str = ""
    error_message: str = ""
    permanent: bool = False
    token_invalid: bool = False

    @classmethod
    def sent(cls, provider_message_id: str) -> SendResult:
        return cls(ok=True, provider_message_id=provider_message_id)

    @classmethod
    def retry(cls, error_code: str, error_message: str = "") -> SendResult:
        return cls(ok=False, error_code=error_code, error_message=error_message)

    @classmethod
    def permanent_failure(
        cls, error_code: str, error_message: str = "", *, token_invalid: bool = False
    ) -> SendResult:
        return cls(
            ok=False,
            error_code=error_code,
            error_message=error_message,
            permanent=True,
            token_invalid=token_invalid,
        )


@dataclass(frozen=True)
class Receipt:
    """A provider's report on a message it accepted earlier (a delivery receipt)."""

    provider_message_id: str
    status: Literal["sent", "delivered", "undelivered", "failed"]
    at: dt.datetime | None = None  # when the provider says it happened (aware)
    error_code: str = ""
    error_message: str = ""
