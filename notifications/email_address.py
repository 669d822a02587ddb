"""Email addresses: validation and masking for logs and stored records."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from .exceptions import InvalidRecipient


def normalize_email(address: str) -> str:
    """``address`` trimmed, with its domain in lower case; :class:`InvalidRecipient` (the
    address masked) if it is not one valid address."""
    address = address.strip()
    try:
        validate_email(address)
    except ValidationError:
        raise InvalidRecipient(f"Invalid email address {mask_email(address)}.") from None
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def mask_email(address: str) -> str:
    """``ann.lee@example.com`` -> ``a***@example.com``: the first character of the name and
    the domain, cut to the 64 characters of ``Delivery.recipient`` (text that is no address:
    its first character)."""
    local, at, domain = address.rpartition("@")
    if not at:
        return f"{address[:1]}***"
    return f"{local[:1]}***@{domain}"[:64]


def mask_address(text: str, address: str) -> str:
    """``text`` with every occurrence of ``address`` masked (a provider's error text)."""
    return text.replace(address, mask_email(address)) if address else text
