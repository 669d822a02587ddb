"""Canonical JSON and hashing: the same content always gives the same bytes and digest."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any


def _default(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise TypeError(f"Refusing to hash a naive datetime: {value!r}")
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    raise TypeError(f"Cannot put {type(value).__name__} in canonical JSON")


def canonical_value(value: Any) -> Any:
    """A scalar as canonical JSON reads it back (a datetime as its UTC ISO string, a Decimal
    as a plain string), without a round trip through JSON."""
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    return _default(value)


def canonical_json(content: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text; Decimals as plain strings, datetimes in UTC."""
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
    )


def sha256_of(content: Any) -> str:
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()
