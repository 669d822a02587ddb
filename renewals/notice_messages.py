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
PRICE_CHANGE = "renewals.price_change"
PRICE_CHANGE_CONSENT = "renewals.price_change_consent"
CANCELLED = "renewals.cancelled"
RESUMED = "renewals.resumed"
CANCELLATION_RECEIVED = "renewals.cancellation_received"
WITHDRAWN = "renewals.withdrawn"
ACKNOWLEDGMENT = "renewals.acknowledgment"
TRIAL_ACKNOWLEDGMENT = "renewals.trial_acknowledgment"


class ReminderFields(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_name: str
    amount: str
    currency: str
    renewal_date: str
    how_to_cancel: str
    cancel_url: str


class PriceChangeFields(BaseModel):
    """A renewal at a new price: ``amount`` and ``currency`` are what it charges,
    ``previous_amount`` and ``previous_currency`` the price until then."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_name: str
    previous_amount: str
    previous_currency: str
    amount: str
    currency: str
    renewal_date: str
    how_to_cancel: str
    cancel_url: str


class PriceChangeConsentFields(BaseModel):
    """A request for consent to a new price, with the link (``consent_url``) to give it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_name: str
    previous_amount: str
    previous_currency: str
    amount: str
    currency: str
    renewal_date: str
    consent_url: str


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


class AcknowledgmentFields(BaseModel):
    """The terms a user agreed to at sign-up: ``price`` is the amount per term as one phrase
    (``terms.price_display``), ``renewal_date`` the first renewal (the end of a free trial),
    ``manage_url`` the page where the user switches auto-renewal off."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    service_name: str
    price: str
    renewal_date: str
    renewal_wording: str
    how_to_cancel: str
    manage_url: str


def _providers(**params: str) -> dict[str, ProviderTemplate]:
    """The Aliyun and Tencent parameters of a message: Aliyun's named ``${name}`` variables,
    ``params`` (variable → field), and Tencent's numbered ``{1}``, ``{2}`` … in that order."""
    numbered = {str(n): field for n, field in enumerate(params.values(), 1)}
    return {
        "aliyun": ProviderTemplate(params=params),
        "tencent": ProviderTemplate(params=numbered),
    }


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
            email_subject="{service_name}自动续费提醒：将于{renewal_date}扣费",
            email_body=(
                "您订阅的{service_name}将于{renewal_date}自动续费，扣费{amount} {currency}。\n\n"
                "{how_to_cancel}\n\n"
                "一键关闭自动续费，请打开以下链接：\n{cancel_url}\n\n"
                "如需继续订阅，您无需任何操作。"
            ),
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: your subscription renews on {renewal_date} for {amount} "
                "{currency}. {how_to_cancel} Turn off auto-renewal: {cancel_url}"
            ),
            push_title="{service_name} renews on {renewal_date}",
            push_body="You will be charged {amount} {currency}. Tap to turn off auto-renewal.",
            email_subject="{service_name}: your subscription renews on {renewal_date}",
            email_body=(
                "Your {service_name} subscription renews automatically on {renewal_date}, and you "
                "will be charged {amount} {currency}.\n\n"
                "{how_to_cancel}\n\n"
                "To turn off auto-renewal in one step, open this link:\n{cancel_url}\n\n"
                "To keep your subscription, you need to do nothing."
            ),
        ),
    },
    # How to cancel is fixed text of the approved template (providers cap a variable's length).
    providers=_providers(
        service="service_name",
        date="renewal_date",
        amount="amount",
        currency="currency",
        url="cancel_url",
    ),
)

#: Aliyun and Tencent parameters of the two price-change messages: the link is the consent
#: link in one, the one-click cancel link in the other.
_PRICE_PARAMS = {
    "service": "service_name",
    "date": "renewal_date",
    "old": "previous_amount",
    "oldcur": "previous_currency",
    "amount": "amount",
    "currency": "currency",
}

price_change = MessageTemplate(
    key=PRICE_CHANGE,
    fields=PriceChangeFields,
    texts={
        "zh-hans": LocalizedText(
            sms=(
                "【{service_name}】自{renewal_date}起，自动续费价格由{previous_amount} "
                "{previous_currency}调整为{amount} {currency}。{how_to_cancel} "
                "一键关闭：{cancel_url}"
            ),
            push_title="{service_name}自动续费价格调整",
            push_body=(
                "自{renewal_date}起由{previous_amount} {previous_currency}调整为{amount} "
                "{currency}，点击可一键关闭自动续费。"
            ),
            email_subject="{service_name}自动续费价格调整：自{renewal_date}起生效",
            email_body=(
                "您订阅的{service_name}自{renewal_date}起，自动续费价格由{previous_amount} "
                "{previous_currency}调整为{amount} {currency}。\n\n"
                "{how_to_cancel}\n\n"
                "一键关闭自动续费，请打开以下链接：\n{cancel_url}\n\n"
                "如接受新价格并继续订阅，您无需任何操作。"
            ),
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: from {renewal_date} your subscription renews at {amount} "
                "{currency} instead of {previous_amount} {previous_currency}. {how_to_cancel} "
                "Turn off auto-renewal: {cancel_url}"
            ),
            push_title="{service_name}: a new price from {renewal_date}",
            push_body=(
                "{amount} {currency} instead of {previous_amount} {previous_currency}. "
                "Tap to turn off auto-renewal."
            ),
            email_subject="{service_name}: a new price from {renewal_date}",
            email_body=(
                "From {renewal_date}, your {service_name} subscription renews at {amount} "
                "{currency} instead of {previous_amount} {previous_currency}.\n\n"
                "{how_to_cancel}\n\n"
                "To turn off auto-renewal in one step, open this link:\n{cancel_url}\n\n"
                "To keep your subscription at the new price, you need to do nothing."
            ),
        ),
    },
    providers=_providers(**_PRICE_PARAMS, url="cancel_url"),
)

price_change_consent = MessageTemplate(
    key=PRICE_CHANGE_CONSENT,
    fields=PriceChangeConsentFields,
    texts={
        "zh-hans": LocalizedText(
            sms=(
                "【{service_name}】自{renewal_date}起，自动续费价格拟由{previous_amount} "
                "{previous_currency}调整为{amount} {currency}，经您同意后方按新价格续费，"
                "未同意则不再续费。查看并同意：{consent_url}"
            ),
            push_title="{service_name}价格调整，请确认是否同意",
            push_body=(
                "自{renewal_date}起{amount} {currency}（原{previous_amount} "
                "{previous_currency}），未同意则不再续费。点击查看。"
            ),
            email_subject="{service_name}价格调整，请确认是否同意",
            email_body=(
                "您订阅的{service_name}自{renewal_date}起，自动续费价格拟由{previous_amount} "
                "{previous_currency}调整为{amount} {currency}。\n\n"
                "经您同意后，订阅才会按新价格续费；未同意则到期后不再续费，也不会扣费。\n\n"
                "查看新价格并表示同意，请打开以下链接：\n{consent_url}"
            ),
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: from {renewal_date} the price would be {amount} {currency} "
                "instead of {previous_amount} {previous_currency}. Your subscription renews "
                "at the new price only if you agree: {consent_url}"
            ),
            push_title="{service_name}: do you agree to the new price?",
            push_body=(
                "From {renewal_date}, {amount} {currency} instead of {previous_amount} "
                "{previous_currency}. Without your consent it will not renew. Tap to review."
            ),
            email_subject="{service_name}: do you agree to the new price?",
            email_body=(
                "From {renewal_date}, the price of your {service_name} subscription would be "
                "{amount} {currency} instead of {previous_amount} {previous_currency}.\n\n"
                "It renews at the new price only if you agree. Without your consent it will "
                "not renew, and nothing more is charged.\n\n"
                "To review the new price and agree to it, open this link:\n{consent_url}"
            ),
        ),
    },
    providers=_providers(**_PRICE_PARAMS, url="consent_url"),
)

cancelled = MessageTemplate(
    key=CANCELLED,
    fields=CancelledFields,
    texts={
        "zh-hans": LocalizedText(
            sms="【{service_name}】您已关闭自动续费，自{effective_date}起不再扣费。",
            push_title="{service_name}已关闭自动续费",
            push_body="自{effective_date}起不再扣费。",
            email_subject="{service_name}已关闭自动续费",
            email_body=(
                "您已关闭{service_name}的自动续费，自{effective_date}起不再扣费。\n\n"
                "请保留此邮件作为确认凭证。"
            ),
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: auto-renewal is off. From {effective_date} you will not be "
                "charged again."
            ),
            push_title="{service_name}: auto-renewal is off",
            push_body="From {effective_date} you will not be charged again.",
            email_subject="{service_name}: auto-renewal is off",
            email_body=(
                "You have turned off auto-renewal of {service_name}. From {effective_date} you "
                "will not be charged again.\n\n"
                "Keep this email as your confirmation."
            ),
        ),
    },
    providers=_providers(service="service_name", date="effective_date"),
)


resumed = MessageTemplate(
    key=RESUMED,
    fields=ResumedFields,
    texts={
        "zh-hans": LocalizedText(
            sms="【{service_name}】您已开通自动续费，将于{renewal_date}扣费{amount} {currency}。",
            push_title="{service_name}已开通自动续费",
            push_body="将于{renewal_date}扣费{amount} {currency}。",
            email_subject="{service_name}已开通自动续费",
            email_body=(
                "您已开通{service_name}的自动续费，将于{renewal_date}扣费{amount} {currency}。\n\n"
                "请保留此邮件作为确认凭证。"
            ),
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: auto-renewal is on. Your subscription renews on "
                "{renewal_date} for {amount} {currency}."
            ),
            push_title="{service_name}: auto-renewal is on",
            push_body="Your subscription renews on {renewal_date} for {amount} {currency}.",
            email_subject="{service_name}: auto-renewal is on",
            email_body=(
                "You have turned on auto-renewal of {service_name}. Your subscription renews on "
                "{renewal_date} for {amount} {currency}.\n\n"
                "Keep this email as your confirmation."
            ),
        ),
    },
    providers=_providers(
        service="service_name", date="renewal_date", amount="amount", currency="currency"
    ),
)


#: Aliyun and Tencent parameters of the declaration confirmations.
_DECLARATION_PROVIDERS = _providers(service="service_name", contract="contract", date="received_at")

cancellation_received = MessageTemplate(
    key=CANCELLATION_RECEIVED,
    fields=DeclarationFields,
    texts={
        "zh-hans": LocalizedText(
            sms="【{service_name}】我们已于{received_at}收到您解除合同{contract}的声明。",
            push_title="{service_name}已收到您的解约声明",
            push_body="我们已于{received_at}收到您解除合同{contract}的声明。",
            email_subject="{service_name}已收到您的解约声明",
            email_body=(
                "我们已于{received_at}收到您解除合同{contract}的声明。\n\n"
                "请保留此邮件作为确认凭证，其中记有您声明的日期和时间。"
            ),
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: on {received_at} we received your cancellation of contract "
                "{contract}."
            ),
            push_title="{service_name}: cancellation received",
            push_body="On {received_at} we received your cancellation of contract {contract}.",
            email_subject="{service_name}: cancellation received",
            email_body=(
                "On {received_at} we received your cancellation of contract {contract}.\n\n"
                "Keep this email as your confirmation: it records the date and time of your "
                "declaration."
            ),
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
            email_subject="{service_name}已收到您的撤回声明",
            email_body=(
                "我们已于{received_at}收到您撤回合同{contract}的声明，合同已终止。\n\n"
                "请保留此邮件作为确认凭证，其中记有您撤回的日期和时间。"
            ),
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
            email_subject="{service_name}: withdrawal received",
            email_body=(
                "On {received_at} we received your withdrawal from contract {contract}. The "
                "contract has ended.\n\n"
                "Keep this email as your confirmation: it records the date and time of your "
                "withdrawal."
            ),
        ),
    },
    providers=_DECLARATION_PROVIDERS,
)


#: Aliyun and Tencent parameters of the two acknowledgments. How to cancel is fixed text of
#: the approved template, as in the reminder.
_ACKNOWLEDGMENT_PROVIDERS = _providers(
    service="service_name", price="price", date="renewal_date", url="manage_url"
)

acknowledgment = MessageTemplate(
    key=ACKNOWLEDGMENT,
    fields=AcknowledgmentFields,
    texts={
        "zh-hans": LocalizedText(
            sms=(
                "【{service_name}】您已开通自动续费，价格为{price}，将于{renewal_date}首次续费扣费，"
                "关闭前每期自动扣费。{how_to_cancel} 关闭自动续费：{manage_url}"
            ),
            push_title="{service_name}已开通自动续费",
            push_body="价格为{price}，将于{renewal_date}首次续费扣费。点击可关闭自动续费。",
            email_subject="{service_name}自动续费条款与关闭方式",
            email_body=(
                "感谢您订阅{service_name}。请保留此邮件：其中载明您的自动续费条款、取消政策及"
                "关闭方式。\n\n"
                "自动续费：{renewal_wording}\n"
                "价格：{price}，在您关闭自动续费之前，每次续费时自动扣费。\n"
                "首次续费：{renewal_date}\n\n"
                "取消政策：您可以随时在线关闭自动续费。关闭后，订阅持续到已付费期间结束，此后不再"
                "扣费。\n\n"
                "关闭方式：{how_to_cancel}\n\n"
                "管理订阅或关闭自动续费，请打开以下链接：\n{manage_url}"
            ),
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: you subscribed with auto-renewal at {price}, first charged on "
                "{renewal_date}, then at every renewal until you turn it off. {how_to_cancel} "
                "Turn off auto-renewal: {manage_url}"
            ),
            push_title="{service_name}: auto-renewal is on",
            push_body="First charged on {renewal_date}: {price}. Tap to turn off auto-renewal.",
            email_subject="{service_name}: your auto-renewal terms and how to cancel",
            email_body=(
                "Thank you for subscribing to {service_name}. Keep this email: it sets out the "
                "terms of your automatic renewal, the cancellation policy and how to cancel.\n\n"
                "Automatic renewal: {renewal_wording}\n"
                "Price: {price}, charged automatically at every renewal until you turn "
                "auto-renewal off.\n"
                "First renewal: {renewal_date}\n\n"
                "Cancellation policy: you can turn off auto-renewal at any time, online. Your "
                "subscription then runs to the end of the period you have paid for, and you "
                "are not charged again.\n\n"
                "How to cancel: {how_to_cancel}\n\n"
                "To manage your subscription or turn off auto-renewal, open this link:\n"
                "{manage_url}"
            ),
        ),
    },
    providers=_ACKNOWLEDGMENT_PROVIDERS,
)

trial_acknowledgment = MessageTemplate(
    key=TRIAL_ACKNOWLEDGMENT,
    fields=AcknowledgmentFields,
    texts={
        "zh-hans": LocalizedText(
            sms=(
                "【{service_name}】您的免费试用将于{renewal_date}结束，之后按{price}自动扣费，"
                "直至您关闭自动续费；在此之前关闭则不扣费。{how_to_cancel} "
                "关闭自动续费：{manage_url}"
            ),
            push_title="{service_name}免费试用已开始",
            push_body=(
                "试用将于{renewal_date}结束，之后按{price}自动扣费。点击可在扣费前关闭自动续费。"
            ),
            email_subject="{service_name}免费试用、自动续费条款与关闭方式",
            email_body=(
                "感谢您订阅{service_name}。请保留此邮件：其中载明您的自动续费条款、取消政策及"
                "关闭方式。\n\n"
                "免费试用：将于{renewal_date}结束；在此之前关闭自动续费，您不会被扣费。\n"
                "自动续费：{renewal_wording}\n"
                "价格：{price}，自免费试用结束时起，在您关闭自动续费之前，每次续费时自动扣费。\n"
                "首次扣费：{renewal_date}\n\n"
                "取消政策：您可以随时在线关闭自动续费。在免费试用期间关闭，订阅于试用结束时终止，"
                "不会扣费；试用结束后关闭，订阅持续到已付费期间结束，此后不再扣费。\n\n"
                "关闭方式：{how_to_cancel}\n\n"
                "如需在首次扣费前关闭自动续费或管理订阅，请打开以下链接：\n{manage_url}"
            ),
        ),
        "en": LocalizedText(
            sms=(
                "{service_name}: your free trial ends on {renewal_date}, then auto-renewal "
                "charges {price} until you turn it off. Turn it off before the trial ends and "
                "you pay nothing. {how_to_cancel} Turn off auto-renewal: {manage_url}"
            ),
            push_title="{service_name}: your free trial has started",
            push_body=(
                "It ends on {renewal_date}, then {price}. Tap to turn off auto-renewal before "
                "you are charged."
            ),
            email_subject="{service_name}: your free trial, auto-renewal terms and how to cancel",
            email_body=(
                "Thank you for subscribing to {service_name}. Keep this email: it sets out the "
                "terms of your automatic renewal, the cancellation policy and how to cancel.\n\n"
                "Free trial: it ends on {renewal_date}; turn off auto-renewal before then and "
                "you are not charged.\n"
                "Automatic renewal: {renewal_wording}\n"
                "Price: {price}, charged automatically from the end of the free trial, at every "
                "renewal until you turn auto-renewal off.\n"
                "First payment: {renewal_date}\n\n"
                "Cancellation policy: you can turn off auto-renewal at any time, online. Turned "
                "off during the free trial, your subscription ends with the trial and you are "
                "not charged; turned off later, it runs to the end of the period you have paid "
                "for, and you are not charged again.\n\n"
                "How to cancel: {how_to_cancel}\n\n"
                "To cancel before the first payment, or to manage your subscription, open this "
                "link:\n{manage_url}"
            ),
        ),
    },
    providers=_ACKNOWLEDGMENT_PROVIDERS,
)


def register_templates() -> None:
    """Register the renewal reminder, the notice of a new price and the request for consent
    to it, the cancellation and resumption confirmations, the confirmations of a
    cancellation declared and a withdrawal, and the acknowledgments of a sign-up."""
    register(
        reminder,
        price_change,
        price_change_consent,
        cancelled,
        resumed,
        cancellation_received,
        withdrawn,
        acknowledgment,
        trial_acknowledgment,
    )


def local_time(instant: dt.datetime, zone: ZoneInfo, locale: str, format_name: str) -> str:
    """``instant`` in ``zone``, written as ``locale`` writes it (Django's ``format_name``,
    e.g. ``"DATE_FORMAT"``): pass the locale the message is rendered in, so a date never
    reads in another language than the text around it."""
    with translation.override(locale):
        return formats.date_format(instant.astimezone(zone), format_name)
