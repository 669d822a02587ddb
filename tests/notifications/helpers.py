# ruff: noqa: RUF001  (full-width punctuation is correct in Chinese text)
"""Shared test data for the notifications tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from zoneinfo import ZoneInfo

from django.conf import settings
from django.test import override_settings
from pydantic import BaseModel

from notifications.backends import locmem
from notifications.message_templates import LocalizedText, MessageTemplate, ProviderTemplate
from notifications.messages import PushMessage, SMSMessage
from notifications.recipients import Recipient
from notifications.signals import delivery_updated

PHONE = "+8613812345678"


class GreetingFields(BaseModel):
    name: str
    code: str


GREETING = MessageTemplate(
    key="tests.greeting",
    fields=GreetingFields,
    texts={
        "zh-hans": LocalizedText(
            sms="你好{name}，验证码{code}", push_title="你好", push_body="{code}"
        ),
        "en": LocalizedText(sms="Hello {name}, code {code}", push_title="Hi", push_body="{code}"),
    },
    providers={"aliyun": ProviderTemplate(params={"n": "name"})},
)
CONTEXT = {"name": "Ann", "code": "42"}


class FCMPush(locmem.PushBackend):
    provider = "fcm"


class APNsPush(locmem.PushBackend):
    provider = "apns"


#: locmem backends: "push" sends to any device, "fcm" and "apns" only to their provider's.
PROVIDER_BACKENDS = {
    "sms": {"BACKEND": "notifications.backends.locmem.SMSBackend"},
    "push": {"BACKEND": "notifications.backends.locmem.PushBackend"},
    "fcm": {"BACKEND": "tests.notifications.helpers.FCMPush"},
    "apns": {"BACKEND": "tests.notifications.helpers.APNsPush"},
}


def phone_recipient(phone: str = PHONE, zone: str = "Asia/Shanghai") -> Recipient:
    return Recipient(phone=phone, locale="en", time_zone=ZoneInfo(zone))


def configure(**values: object) -> override_settings:
    """``override_settings`` that changes some NOTIFICATIONS keys and keeps the others."""
    return override_settings(NOTIFICATIONS={**settings.NOTIFICATIONS, **values})


def sms_numbers() -> list[str]:
    """The number each message in the locmem outbox went to, which holds only SMS."""
    numbers = []
    for message in locmem.outbox:
        assert isinstance(message, SMSMessage), message
        numbers.append(message.to)
    return numbers


def push_tokens() -> list[str]:
    """The device token of each message in the locmem outbox, which holds only pushes."""
    tokens = []
    for message in locmem.outbox:
        assert isinstance(message, PushMessage), message
        tokens.append(message.token)
    return tokens


@contextmanager
def no_receivers() -> Iterator[None]:
    """No ``delivery_updated`` receiver connected (as in a project without renewals)."""
    receivers = delivery_updated.receivers
    delivery_updated.receivers = []
    delivery_updated.sender_receivers_cache.clear()
    try:
        yield
    finally:
        delivery_updated.receivers = receivers
        delivery_updated.sender_receivers_cache.clear()
