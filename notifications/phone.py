"""Phone numbers: E.164 normalization and masking for logs and stored records."""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import TYPE_CHECKING

import phonenumbers

from .conf import notifications_settings
from .exceptions import InvalidRecipient

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


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


#: Digits as people write a number in text: after an optional "+" or "(", digit groups joined
#: by up to three separators (``+1 415-555-0100``, ``(415) 555-0100``, ``138 - 1234 - 5678``,
#: ``030/1234567``). A run of seven digits or more may be a phone number.
NUMBER_LIKE = re.compile(r"[+(]?\d(?:[ \t\u00a0().\-/]{0,3}\d)*")
#: Fewest digits in a run that is masked.
MASKED_FROM = 7
#: An unbroken run of more digits than an E.164 number has (15) is an id, not a phone number.
E164_MAX_DIGITS = 15
#: A date written with digits, year first or last (``2025-03-01``, ``01.03.2025``).
DATE_LIKE = re.compile(
    r"(?<!\d)(?:"
    r"(?:19|20)\d\d(?P<ymd>[-./])(?:0?[1-9]|1[0-2])(?P=ymd)(?:0?[1-9]|[12]\d|3[01])"
    r"|(?:0?[1-9]|[12]\d|3[01])(?P<dmy>[-./])(?:0?[1-9]|1[0-2])(?P=dmy)(?:19|20)\d\d"
    r")(?!\d)"
)


def mask_numbers(text: str) -> str:
    """``text`` with every run of digits that may be a phone number masked by :func:`mask`,
    for provider error texts (``"The 'To' number +1 415-555-0100 is not valid"`` →
    ``… +1 415****100 …``).

    Dates stay readable, and so does an unbroken run of more than 15 digits (a message id);
    digits next to them are masked on their own (``2025-03-01 138****5678``). A number written
    exactly like a date is taken for one. Masking masked text changes nothing.
    """
    masked, start = [], 0
    for date in _dates(text):
        masked += [NUMBER_LIKE.sub(_mask_run, text[start : date.start()]), date.group()]
        start = date.end()
    return "".join([*masked, NUMBER_LIKE.sub(_mask_run, text[start:])])


def _dates(text: str) -> list[re.Match[str]]:
    """The dates in ``text`` that do not go on with their own separator and more digits (as
    ``2012-11-05-678`` does, which is a number)."""
    dates = []
    for match in DATE_LIKE.finditer(text):
        separator = match.group("ymd") or match.group("dmy")
        before, after = text[max(match.start() - 2, 0) : match.start()], text[match.end() :]
        joined_before = len(before) == 2 and before[0].isdigit() and before[1] == separator
        joined_after = after[:1] == separator and after[1:2].isdigit()
        if not (joined_before or joined_after):
            dates.append(match)
    return dates


def _mask_run(match: re.Match[str]) -> str:
    found = match.group()
    digits = sum(c.isdigit() for c in found)
    if digits < MASKED_FROM or (digits > E164_MAX_DIGITS and found.lstrip("+").isdigit()):
        return found
    return mask(found)


def masked_repr(instance: DataclassInstance, number_field: str) -> str:
    """The dataclass ``repr()`` of ``instance`` with the phone number in ``number_field`` masked,
    so that logging or printing a message or recipient shows no full number."""
    values = (
        (field.name, getattr(instance, field.name))
        for field in dataclasses.fields(instance)
        if field.repr
    )
    shown = ", ".join(
        f"{name}={mask(value) if name == number_field and value else value!r}"
        for name, value in values
    )
    return f"{type(instance).__qualname__}({shown})"


def mask_token(token: str) -> str:
    """A push token cut to its first six characters (enough to tell tokens apart in logs)."""
    return token[:6] + "…"
