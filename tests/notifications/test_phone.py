import pytest
from django.test import override_settings

from notifications.exceptions import InvalidRecipient
from notifications.phone import mask, mask_numbers, mask_token, normalize


def test_normalize_to_e164():
    assert normalize("+86 138-1234-5678") == "+8613812345678"


def test_normalize_uses_region_argument_then_default_region():
    assert normalize("13812345678", "CN") == "+8613812345678"
    with override_settings(NOTIFICATIONS={"DEFAULT_REGION": "CN"}):
        assert normalize("138 1234 5678") == "+8613812345678"


def test_normalize_without_region_needs_plus_and_masks_the_number():
    with pytest.raises(InvalidRecipient) as exc:
        normalize("13812345678")
    assert "13812345678" not in str(exc.value)
    assert "138****5678" in str(exc.value)
    assert "DEFAULT_REGION" in str(exc.value)


def test_normalize_rejects_invalid_numbers():
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
def test_mask(number, masked):
    assert mask(number) == masked


def test_mask_token_keeps_six_characters():
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
    ],
)
def test_mask_numbers_in_free_text(text, masked):
    assert mask_numbers(text) == masked
