"""The audit key: HMAC-SHA256 tags that only a holder of ``RENEWALS["AUDIT_KEY"]`` can make.

The key lives in the settings (an environment variable, a secrets manager), never in the
database, so someone who can rewrite the database cannot forge a tag. Each tag names its
purpose ("event", "checkpoint", "head", "count"), so a tag made for one kind of row is never
valid for another.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from .canonical import canonical_json
from .conf import renewals_settings


def audit_key() -> bytes | None:
    """``RENEWALS["AUDIT_KEY"]`` as bytes, or ``None`` when the project set none."""
    key: bytes | None = renewals_settings.AUDIT_KEY
    return key


def tag(key: bytes, purpose: str, content: Any) -> str:
    """The hex HMAC-SHA256 under ``key`` of ``purpose`` and the canonical JSON of ``content``."""
    message = f"renewals.audit.{purpose}\n{canonical_json(content)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def tag_matches(key: bytes, purpose: str, content: Any, mac: str) -> bool:
    """Whether ``mac`` is the tag of ``content`` for ``purpose`` (constant-time)."""
    return hmac.compare_digest(tag(key, purpose, content), mac)
