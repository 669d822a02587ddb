"""The texts of the renewals message templates read as whole sentences in every locale."""

import pytest

from notifications.conf import notifications_settings
from notifications.message_templates import MessageTemplate, sms_segments
from renewals import notice_messages

TEMPLATES = [
    notice_messages.reminder,
    notice_messages.price_change,
    notice_messages.price_change_consent,
    notice_messages.cancelled,
    notice_messages.resumed,
    notice_messages.cancellation_received,
    notice_messages.withdrawn,
    notice_messages.acknowledgment,
    notice_messages.trial_acknowledgment,
]
#: An English date and time as Django writes it: it ends in a full stop of its own.
WHEN = "Dec. 7, 2026, 10 a.m."


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda template: template.key)
def test_no_sentence_ends_right_after_a_date_or_time(template: MessageTemplate) -> None:
    # "... on {received_at}." would read "10 a.m.." in English.
    context = {
        name: WHEN if "date" in name or name.endswith("_at") else "X"
        for name in template.fields.model_fields
    }
    for locale in template.texts:
        text = template.render(context, locale).text
        for part in (
            text.sms,
            text.push_title,
            text.push_body,
            text.email_subject,
            text.email_body,
        ):
            assert ".." not in part, (locale, part)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda template: template.key)
def test_every_locale_has_an_email_of_its_own(template: MessageTemplate) -> None:
    for locale, text in template.texts.items():
        assert text.email_subject, locale
        assert text.email_body, locale


@pytest.mark.parametrize(
    "template",
    [
        notice_messages.reminder,
        notice_messages.price_change,
        notice_messages.price_change_consent,
        notice_messages.acknowledgment,
        notice_messages.trial_acknowledgment,
    ],
    ids=lambda template: template.key,
)
def test_a_notice_fits_the_sms_limit_in_every_locale(template: MessageTemplate) -> None:
    """With a typical renewal's values: the link, the cancellation method and the amounts."""
    values = {
        "price": "每 3 个月 30.00 CNY",
        "renewal_wording": "每 3 个月自动续费，直至您关闭自动续费。",  # noqa: RUF001
        "manage_url": "https://shop.example/subscriptions/",
        "service_name": "Example Plus",
        "amount": "30.00",
        "currency": "CNY",
        "previous_amount": "25.00",
        "previous_currency": "CNY",
        "renewal_date": "2027年3月10日",
        "how_to_cancel": "打开“我的订阅”，点击“关闭自动续费”，立即生效。",  # noqa: RUF001
        "cancel_url": "https://shop.example/c/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789/",
        "consent_url": "https://shop.example/subscriptions/#subscription-123456",
    }
    context = {name: values[name] for name in template.fields.model_fields}
    for locale in template.texts:
        sms = template.render(context, locale).text.sms
        assert sms_segments(sms) <= notifications_settings.SMS_MAX_SEGMENTS, (locale, sms)
