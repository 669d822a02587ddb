"""``{{ message.body|linkify }}``: a message's text with its web addresses as links."""

import re

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

#: A web address, up to a space, a quote or an angle bracket, or a CJK punctuation mark or
#: full-width form, which Chinese text writes with no space around (U+FF1A before a link).
_ADDRESS = re.compile(r"https?://[^\s<>\"'\u3000-\u303f\uff00-\uffef]+")
#: Punctuation that ends a sentence rather than the address.
_TRAILING = ".,;:!?)"


@register.filter
def linkify(text: str) -> SafeString:
    """``text``, escaped, with each http(s) address in it a link to that address."""
    pieces: list[tuple[str, str]] = []  # (text before, address)
    start = 0
    for match in _ADDRESS.finditer(text):
        address = match.group().rstrip(_TRAILING)
        pieces.append((text[start : match.start()], address))
        start = match.start() + len(address)
    links = format_html_join("", '{}<a href="{}">{}</a>', ((b, a, a) for b, a in pieces))
    return format_html("{}{}", links, text[start:])
