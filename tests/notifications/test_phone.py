import pytest
from django.test import override_settings

from notifications.exceptions import InvalidRecipient
from notifications.messages import SMSMessage
from notifications.phone import mask, mask_numbers, mask_token, normalize
from notifications.recipients import Recipient


def test_normalize_to_e164() -> None:
    assert normalize("+86 138-1234-5678") == "+8613812345678"


def test_normalize_uses_region_argument_then_default_region() -> None:
    assert normalize("13812345678", "CN") == "+8613812345678"
    with override_settings(NOTIFICATIONS={"DEFAULT_REGION": "CN"}):
        assert normalize("138 1234 5678") == "+8613812345678"


def test_normalize_without_region_needs_plus_and_masks_the_number() -> None:
    with pytest.raises(InvalidRecipient) as exc:
        normalize("13812345678")
    assert "13812345678" not in str(exc.value)
    assert "138****5678" in str(exc.value)
    assert "DEFAULT_REGION" in str(exc.value)


def test_normalize_rejects_invalid_numbers() -> None:
    with pytest.raises(InvalidRecipient):
        normalize("+86 123")


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+8613812345678", "+86 138****5678"),
        ("+14155552671", "+1 415****671"),
        ("12345", "****5"),
    ],
)
def test_mask(number: str, masked: str) -> None:
    assert mask(number) == masked


def test_mask_token_keeps_six_characters() -> None:
    assert mask_token("abcdef0123456789") == "abcdef…"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "The 'To' number +15551234567 is not a valid phone number.",
            "The 'To' number +1 555****567 is not a valid phone number.",
        ),
        ("13812345678,+8613812345679 空号", "138****5678,+86 138****5679 空号"),
        ("error 21211 at 2025-03-01 16:00:05", "error 21211 at 2025-03-01 16:00:05"),
        ("To +1 415-555-0100: invalid", "To +1 415****100: invalid"),
        ("call (415) 555-0100 now", "call 415****100 now"),
        ("号码 138 1234 5678 空号", "号码 138****5678 空号"),
        ("BizId 900619746936498440 failed", "BizId 900619746936498440 failed"),
        ("", ""),
        # Next to a date, another number or written with spaced hyphens.
        ("2025-03-01 13812345678 rejected", "2025-03-01 138****5678 rejected"),
        ("13812345678 2025-03-01", "138****5678 2025-03-01"),
        ("am 01.03.2025 030/1234567", "am 01.03.2025 030****567"),
        ("sdkappid 1400000000 13812345678", "sdkappid 140**************5678"),
        ("138 - 1234 - 5678", "138****5678"),
        ("BizId 900619746936498440 13812345678", "BizId 900" + "*" * 22 + "5678"),
        # A number that goes on after a date's shape is a number.
        ("2012-11-05-678", "201****5678"),
    ],
)
def test_mask_numbers_in_free_text(text: str, masked: str) -> None:
    assert mask_numbers(text) == masked


@pytest.mark.parametrize(
    "digits", ["123456789012", "1234567890123", "12345678901234", "123456789012345"]
)
def test_mask_numbers_masks_twelve_to_fifteen_digits(digits: str) -> None:
    assert (
        mask_numbers(f"id {digits}.") == f"id {digits[:3]}{'*' * (len(digits) - 7)}{digits[-4:]}."
    )


def test_mask_numbers_keeps_an_unbroken_run_of_sixteen_digits() -> None:
    assert mask_numbers("id 1234567890123456.") == "id 1234567890123456."


def test_repr_of_a_message_and_a_recipient_masks_the_number() -> None:
    message = SMSMessage(to="+8613812345678", body="Renews on 1 May")
    recipient = Recipient(phone="+8613812345678", locale="zh-hans")
    for shown in (repr(message), repr(recipient), str(recipient), f"{message}"):
        assert "13812345678" not in shown
        assert "'+86 138****5678'" in shown
    assert repr(message).startswith("SMSMessage(to='+86 138****5678', body='Renews on 1 May'")
    assert "locale='zh-hans'" in repr(recipient)
    assert repr(Recipient()).startswith("Recipient(user=None, phone=None,")
