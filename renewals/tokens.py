"""The signed token of a reminder's one-click cancel link.

A token names a subscription and one of its notices, signed with Django's
:class:`~django.core.signing.TimestampSigner` under a salt of its own, so no other value the
site signs passes for one. It goes in an SMS, so it is kept short: the two ids in base 62,
``.`` between the parts (every character of a token is unreserved in a URL, so nothing is
ever percent-encoded), and the HMAC-SHA256 cut to its first 22 base64 characters (132 bits:
RFC 2104 asks for no less than half the hash). A token reads about 40 characters.

A link works until :data:`LIFETIME` after the renewal its notice announces, counted from the
notice in the database; the next reminder carries a fresh one. The signing time is not what
limits it: a reminder can go out weeks before its renewal (a yearly plan's), so a fixed age
would end some links before their renewal and keep others open long after theirs.
"""

from __future__ import annotations

import datetime as dt

from django.core import signing
from django.utils import timezone

from .exceptions import LinkExpired, LinkTampered
from .models import RenewalNotice

SALT = "renewals.one_click_cancel"
#: A link works until this long after the renewal its notice announces.
LIFETIME = dt.timedelta(days=7)
_SIGNATURE_LENGTH = 22


class _Signer(signing.TimestampSigner):
    """The signer of the links: a shortened signature, and ``.`` between the parts."""

    def __init__(self) -> None:
        super().__init__(salt=SALT, sep=".")

    def signature(self, value: bytes | str, key: bytes | str | None = None) -> str:
        return super().signature(value, key)[:_SIGNATURE_LENGTH]


def one_click_token(notice: RenewalNotice) -> str:
    """The token of ``notice``'s cancel link (:func:`renewals.links.cancel_url` builds the
    URL)."""
    ids = (signing.b62_encode(notice.subscription_id), signing.b62_encode(notice.pk))
    return _Signer().sign(".".join(ids))


def link_expires_at(notice: RenewalNotice) -> dt.datetime:
    """When the links of ``notice`` stop working."""
    return notice.renewal_at + LIFETIME


def read_one_click_token(token: str) -> RenewalNotice:
    """The notice ``token`` was made for, with its subscription and terms.

    Raises :class:`~renewals.exceptions.LinkTampered` if the token was changed, or names a
    notice that does not exist or is not the named subscription's; and
    :class:`~renewals.exceptions.LinkExpired` from :func:`link_expires_at` on.
    """
    try:
        payload = _Signer().unsign(token)
    except signing.BadSignature:
        raise LinkTampered from None
    subscription_id, notice_id = (signing.b62_decode(part) for part in payload.split("."))
    notice = (
        RenewalNotice.objects.select_related("subscription__terms", "subscription__upcoming_terms")
        .filter(pk=notice_id, subscription_id=subscription_id)
        .first()
    )
    if notice is None:
        raise LinkTampered
    expires_at = link_expires_at(notice)
    if timezone.now() >= expires_at:
        raise LinkExpired(expires_at)
    return notice
