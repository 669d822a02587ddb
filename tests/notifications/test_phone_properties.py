"""Properties of :func:`~notifications.phone.mask_numbers`: whatever the text around a phone
number and however the number is written, none of it stays readable, and masking masked text
changes nothing."""

from __future__ import annotations

import re

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from notifications.phone import DATE_LIKE, mask_numbers

#: How people separate the groups of a number.
SEPARATORS = [" ", "-", ".", "/", " - ", "\u00a0", ""]
#: Text with digits that a provider's error message puts next to a number.
NEIGHBOURS = [
    "",
    "2025-03-01 ",
    "01.03.2025 ",
    "at 16:00:05 ",
    "sdkappid 1400000000 ",
    "BizId 900619746936498440 ",
    "error 21211: ",
    "+",
    "(",
    " - ",
]
#: The longest run of a number's digits allowed to stay readable.
READABLE = 6
#: What may stand between two digits of one written number, and is not told from it.
_FILLER = re.compile(r"[ \t\u00a0().\-/+]")


@st.composite
def written_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A phone number's digits (7 to 15), and the number written in groups as people do."""
    digits = draw(st.text("0123456789", min_size=7, max_size=15))
    groups: list[str] = []
    rest = digits
    while rest:
        size = draw(st.integers(1, 5))
        groups, rest = [*groups, rest[:size]], rest[size:]
    separator = draw(st.sampled_from(SEPARATORS))
    written = separator.join(groups)
    style = draw(st.sampled_from(["plain", "international", "area code in brackets"]))
    if style == "international":
        written = "+" + written
    elif style == "area code in brackets" and len(groups) > 1:
        written = f"({groups[0]}) " + separator.join(groups[1:])
    return digits, written


#: Text with no digits of its own (digits come from NEIGHBOURS).
words = st.text(st.characters(exclude_categories=["Nd"]), max_size=20)


def readable_runs(text: str) -> str:
    """``text`` with what may stand inside a written number taken out, so that a run of digits
    split only by separators reads as one."""
    return _FILLER.sub("", text)


@settings(max_examples=500, deadline=None)
@given(
    number=written_numbers(),
    before=words,
    after=words,
    neighbour_before=st.sampled_from(NEIGHBOURS),
    neighbour_after=st.sampled_from([n.strip() and " " + n.strip() for n in NEIGHBOURS]),
)
@example(  # 12 to 15 digits unbroken are a number, 16 an id
    number=("861381234567", "+861381234567"),
    before="",
    after="",
    neighbour_before="",
    neighbour_after="",
)
@example(
    number=("13812345678", "138 - 1234 - 5678"),
    before="",
    after="",
    neighbour_before="",
    neighbour_after="",
)
@example(
    number=("13812345678", "13812345678"),
    before="",
    after=" rejected",
    neighbour_before="2025-03-01 ",
    neighbour_after="",
)
@example(
    number=("13812345678", "13812345678"),
    before="",
    after="",
    neighbour_before="sdkappid 1400000000 ",
    neighbour_after="",
)
def test_no_run_of_a_numbers_digits_survives(
    number: tuple[str, str], before: str, after: str, neighbour_before: str, neighbour_after: str
) -> None:
    digits, written = number
    assume(DATE_LIKE.search(written) is None)  # a number written exactly as a date is a date
    # The number stands apart: no digit or "+" of the text is glued to it.
    text = f"{before}{neighbour_before}{written}{neighbour_after} {after}"
    context = readable_runs(before + neighbour_before + neighbour_after + after)
    masked = readable_runs(mask_numbers(text))
    for start in range(len(digits) - READABLE):
        window = digits[start : start + READABLE + 1]
        assert window not in masked or window in context, (text, mask_numbers(text))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(), st.text("0123456789 -./()+*\u00a0abc:", max_size=60)))
def test_masking_is_idempotent(text: str) -> None:
    once = mask_numbers(text)
    assert mask_numbers(once) == once


@settings(deadline=None)
@given(written_numbers())
def test_masking_a_number_alone_is_idempotent(number: tuple[str, str]) -> None:
    once = mask_numbers(number[1])
    assert mask_numbers(once) == once
