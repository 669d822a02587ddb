"""Phone numbers: E.164 normalization and masking for logs and stored records."""

from __future__ import annotations

import functools
import re

import phonenumbers

from .conf import notifications_settings
from .exceptions import InvalidRecipient


def normalize(number: str, region: str | None = None) -> str:
    """``number`` in E.164 (``+8613812345678``); ``region`` defaults to ``DEFAULT_REGION``."""
    return _e164(number, region or notifications_settings.DEFAULT_REGION)


@functools.lru_cache(maxsize=4096)
def _e164(number: str, region: str | None) -> str:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        hint = "" if region else " (no DEFAULT_REGION: write it with a leading '+')"
        raise InvalidRecipient(f"Invalid phone number {mask(number)}{hint}.")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    _remember(e164, _mask_parsed(parsed))  # spares mask() a second parse of the number
    return e164


def mask(number: str) -> str:
    """``+8613812345678`` -> ``+86 138****5678``: the country code, then the middle hidden.

    Anything that does not parse is masked too, keeping at most its first three and last
    four digits, so no caller can log a full number by accident.
    """
    masked = _masked.get(number)
    if masked is None:
        try:
            masked = _mask_parsed(phonenumbers.parse(number, None))
        except phonenumbers.NumberParseException:
            masked = _hide("", "".join(c for c in number if c.isdigit()))
        _remember(number, masked)
    return masked


#: Masked forms of numbers seen lately (normalized and raw), at most ``_MASKED_KEPT``.
_masked: dict[str, str] = {}
_MASKED_KEPT = 4096


def _remember(number: str, masked: str) -> None:
    if len(_masked) >= _MASKED_KEPT:
        _masked.clear()
    _masked[number] = masked


def _mask_parsed(parsed: phonenumbers.PhoneNumber) -> str:
    return _hide(f"+{parsed.country_code} ", phonenumbers.national_significant_number(parsed))


def _hide(prefix: str, digits: str) -> str:
    keep_head = min(3, max(len(digits) - 6, 0))
    keep_tail = min(4, max(len(digits) - keep_head - 4, 0))
    hidden = len(digits) - keep_head - keep_tail
    return f"{prefix}{digits[:keep_head]}{'*' * hidden}{digits[len(digits) - keep_tail :]}"


#: Seven or more digits, optionally after "+" and written with spaces, dots, hyphens or
#: brackets between them (``+1 415-555-0100``, ``(415) 555-0100``, ``138 1234 5678``): what
#: may be a phone number in free text.
NUMBER_LIKE = re.compile(r"[+(]?\d(?:[ ().-]{0,2}\d){6,}")
#: Dates written as digits (``2025-03-01``, ``2025.03.01``), which are not phone numbers.
DATE_LIKE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}")


def mask_numbers(text: str) -> str:
    """``text`` with every phone-number-like run masked by :func:`mask`, for provider error
    texts (``"The 'To' number +1 415-555-0100 is not valid"`` → ``… +1 415****100 …``).

    Dates and digit runs longer than an E.164 number (15 digits: message ids) stay as they are.
    """

    def replace(match: re.Match[str]) -> str:
        found = match.group()
        digits = sum(c.isdigit() for c in found)
        return found if digits > 15 or DATE_LIKE.search(found) else mask(found)

    return NUMBER_LIKE.sub(replace, text)


def mask_token(token: str) -> str:
    """A push token cut to its first six characters (enough to tell tokens apart in logs)."""
    return token[:6] + "…"
