# ruff: noqa: RUF001  (full-width punctuation is correct in Chinese text)
"""The message templates renewals sends through ``notifications``.

``register_templates()`` is called from ``RenewalsConfig.ready()``. Callers format ``amount``
and the dates (in the user's time zone and locale) before sending; the confirmations state
the time as well as the day. For template-only SMS providers
the parameter names below are the ones to use when submitting the template text for approval.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.utils import formats, translation
from pydantic import BaseModel, ConfigDict

from notifications.message_templates import (
    LocalizedText,
    MessageTemplate,
    ProviderTemplate,
    register,
)

REMINDER = "renewals.reminder"
CANCELLED = "renewals.cancelled"
RESUMED = "renewals.resumed"
CANCELLATION_RECEIVED = "renewals.cancellation_received"
WITHDRAWN = "renewals.withdrawn"


class ReminderFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_name: str
    amount: str
    currency: str
    renewal_date: str
    how_to_cancel: str
    cancel_url: str


class CancelledFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_name: str
    effective_date: str


class ResumedFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_name: str
    renewal_date: str
    amount: str
    currency: str


class DeclarationFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_name: str
    contract: str
    received_at: str


reminder = MessageTemplate(
    key=REMINDER,
    fields=ReminderFields,
    texts={
        "zh-hans": LocalizedText(
            sms=(
                "【{service_name}】您的自动续费将于{renewal_date}扣费{amount} {currency}。"
                "{how_to_cancel} 一键关闭：{cancel_url}"
            ),
            push_title="{service_name}自动续费提醒",
            push_body="将于{renewal_date}扣费{amount} {currency}，点击可一键关闭自动续费。",
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: your subscription renews on {renewal_date} for {amount} "
                "{currency}. {how_to_cancel} Turn off auto-renewal: {cancel_url}"
            ),
            push_title="{service_name} renews on {renewal_date}",
            push_body="You will be charged {amount} {currency}. Tap to turn off auto-renewal.",
        ),
    },
    providers={
        # Aliyun: ${name} variables; Tencent: numbered {1}, {2} … in this order. How to
        # cancel is fixed text of the approved template (providers cap a variable's length).
        "aliyun": ProviderTemplate(
            params={
                "service": "service_name",
                "date": "renewal_date",
                "amount": "amount",
                "currency": "currency",
                "url": "cancel_url",
            }
        ),
        "tencent": ProviderTemplate(
            params={
                "1": "service_name",
                "2": "renewal_date",
                "3": "amount",
                "4": "currency",
                "5": "cancel_url",
            }
        ),
    },
)

cancelled = MessageTemplate(
    key=CANCELLED,
    fields=CancelledFields,
    texts={
        "zh-hans": LocalizedText(
            sms="【{service_name}】您已关闭自动续费，自{effective_date}起不再扣费。",
            push_title="{service_name}已关闭自动续费",
            push_body="自{effective_date}起不再扣费。",
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: auto-renewal is off. From {effective_date} you will not be "
                "charged again."
            ),
            push_title="{service_name}: auto-renewal is off",
            push_body="From {effective_date} you will not be charged again.",
        ),
    },
    providers={
        "aliyun": ProviderTemplate(params={"service": "service_name", "date": "effective_date"}),
        "tencent": ProviderTemplate(params={"1": "service_name", "2": "effective_date"}),
    },
)


resumed = MessageTemplate(
    key=RESUMED,
    fields=ResumedFields,
    texts={
        "zh-hans": LocalizedText(
            sms="【{service_name}】您已开通自动续费，将于{renewal_date}扣费{amount} {currency}。",
            push_title="{service_name}已开通自动续费",
            push_body="将于{renewal_date}扣费{amount} {currency}。",
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: auto-renewal is on. Your subscription renews on "
                "{renewal_date} for {amount} {currency}."
            ),
            push_title="{service_name}: auto-renewal is on",
            push_body="Your subscription renews on {renewal_date} for {amount} {currency}.",
        ),
    },
    providers={
        "aliyun": ProviderTemplate(
            params={
                "service": "service_name",
                "date": "renewal_date",
                "amount": "amount",
                "currency": "currency",
            }
        ),
        "tencent": ProviderTemplate(
            params={"1": "service_name", "2": "renewal_date", "3": "amount", "4": "currency"}
        ),
    },
)


#: Aliyun and Tencent parameters of the declaration confirmations.
_DECLARATION_PROVIDERS = {
    "aliyun": ProviderTemplate(
        params={"service": "service_name", "contract": "contract", "date": "received_at"}
    ),
    "tencent": ProviderTemplate(params={"1": "service_name", "2": "contract", "3": "received_at"}),
}

cancellation_received = MessageTemplate(
    key=CANCELLATION_RECEIVED,
    fields=DeclarationFields,
    texts={
        "zh-hans": LocalizedText(
            sms="【{service_name}】我们已于{received_at}收到您解除合同{contract}的声明。",
            push_title="{service_name}已收到您的解约声明",
            push_body="我们已于{received_at}收到您解除合同{contract}的声明。",
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: on {received_at} we received your cancellation of contract "
                "{contract}."
            ),
            push_title="{service_name}: cancellation received",
            push_body="On {received_at} we received your cancellation of contract {contract}.",
        ),
    },
    providers=_DECLARATION_PROVIDERS,
)

withdrawn = MessageTemplate(
    key=WITHDRAWN,
    fields=DeclarationFields,
    texts={
        "zh-hans": LocalizedText(
            sms="【{service_name}】我们已于{received_at}收到您撤回合同{contract}的声明，合同已终止。",
            push_title="{service_name}已收到您的撤回声明",
            push_body="我们已于{received_at}收到您撤回合同{contract}的声明，合同已终止。",
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: on {received_at} we received your withdrawal from contract "
                "{contract}. The contract has ended."
            ),
            push_title="{service_name}: withdrawal received",
            push_body=(
                "On {received_at} we received your withdrawal from contract {contract}. "
                "The contract has ended."
            ),
        ),
    },
    providers=_DECLARATION_PROVIDERS,
)


def register_templates() -> None:
    """Register the renewal reminder, the cancellation and resumption confirmations, and the
    confirmations of a cancellation declared and a withdrawal."""
    register(reminder, cancelled, resumed, cancellation_received, withdrawn)


def local_time(instant: dt.datetime, zone: ZoneInfo, locale: str, format_name: str) -> str:
    """``instant`` in ``zone``, written as ``locale`` writes it (Django's ``format_name``,
    e.g. ``"DATE_FORMAT"``): pass the locale the message is rendered in, so a date never
    reads in another language than the text around it."""
    with translation.override(locale):
        return formats.date_format(instant.astimezone(zone), format_name)
