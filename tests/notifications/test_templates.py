# ruff: noqa: RUF001  (full-width punctuation is correct in Chinese text)
import pytest
from django.test import override_settings

from notifications.exceptions import MessageError
from notifications.message_templates import check_sms_length, get_template, sms_segments
from renewals.notice_messages import register_templates

from .helpers import CONTEXT, GREETING


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 152, 3),  # an escape pair is never split between parts
        ("汉" * 70, 1),
        ("汉" * 71, 2),
        ("汉" * 134, 2),
        ("汉" * 135, 3),
        ("a" * 69 + "😀", 2),  # a surrogate pair: two UTF-16 code units
        ("", 1),
    ],
)
def test_sms_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_one_non_gsm_character_switches_to_ucs2() -> None:
    assert sms_segments("a" * 70 + "ä") == 1  # ä is GSM-7
    assert sms_segments("a" * 70 + "ą") == 2


@override_settings(NOTIFICATIONS={"SMS_MAX_SEGMENTS": 2})
def test_check_sms_length_enforces_the_setting() -> None:
    check_sms_length("a" * 306)
    with pytest.raises(MessageError, match=r"3 segments.*SMS_MAX_SEGMENTS"):
        check_sms_length("a" * 307)


def test_missing_field_is_named() -> None:
    with pytest.raises(MessageError, match="code: Field required"):
        GREETING.render({"name": "Ann"}, "en")


def test_render_picks_the_locale_and_falls_back() -> None:
    assert GREETING.render(CONTEXT, "en").text.sms == "Hello Ann, code 42"
    assert GREETING.render(CONTEXT, "zh-CN").locale == "zh-hans"
    assert GREETING.render(CONTEXT, "zh_Hans").locale == "zh-hans"
    assert GREETING.render(CONTEXT, "fr").locale == "zh-hans"  # the first is the fallback
    assert GREETING.render(CONTEXT, None).locale == "zh-hans"


def test_provider_params() -> None:
    assert GREETING.provider_params("aliyun", {"name": "Ann", "code": "1"}) == {"n": "Ann"}
    assert GREETING.provider_params("twilio", {"name": "Ann", "code": "1"}) == {}


def test_get_unknown_template() -> None:
    with pytest.raises(MessageError, match="No message template 'nope'"):
        get_template("nope")


def test_renewal_templates() -> None:
    register_templates()
    context = {
        "service_name": "会员",
        "amount": "25.00",
        "currency": "元",
        "renewal_date": "2025年3月1日",
        "how_to_cancel": "可在“我的-设置”中关闭。",
        "cancel_url": "https://e.example/c/abc",
    }
    rendered = get_template("renewals.reminder").render(context, "zh-hans")
    assert rendered.text.sms.startswith("【会员】您的自动续费将于2025年3月1日扣费25.00 元。")
    assert rendered.text.sms.endswith("一键关闭：https://e.example/c/abc")
    assert sms_segments(rendered.text.sms) <= 2
    template = get_template("renewals.reminder")
    assert template.provider_params("tencent", rendered.fields)["5"] == "https://e.example/c/abc"
    assert "Turn off auto-renewal" in template.render(context, "en").text.sms
    with pytest.raises(MessageError, match="cancel_url"):
        template.render({**context, "cancel_url": None}, "en")
    cancelled = get_template("renewals.cancelled")
    assert (
        "auto-renewal is off"
        in cancelled.render(
            {"service_name": "Gold", "effective_date": "1 March"}, "en"
        ).text.push_title
    )
