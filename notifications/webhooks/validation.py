"""What a receipt must be before the webhook stores it: anything else is a malformed callback."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import BadRequest
from django.utils import timezone

from ..messages import Receipt
from ..models import Delivery, UnmatchedReceipt

#: No provider reports a delivery before this.
EARLIEST_REPORT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
#: How far ahead of our clock a provider's may run.
CLOCK_SKEW = dt.timedelta(days=1)
#: The longest provider message id that the delivery and unmatched receipt tables hold.
MESSAGE_ID_MAX_LENGTH = min(
    model._meta.get_field("provider_message_id").max_length or 0
    for model in (Delivery, UnmatchedReceipt)
)


def storable(receipt: Receipt) -> Receipt:
    """``receipt``, once it is known to fit the database; raises
    :class:`~django.core.exceptions.BadRequest` naming what does not.

    Its message id is a non-empty text the tables can hold, its time (if any) lies between
    2000 and a day from now, and no text holds a NUL or an unpaired surrogate (which
    PostgreSQL cannot store).
    """
    texts = {
        "message id": receipt.provider_message_id,
        "error code": receipt.error_code,
        "error message": receipt.error_message,
    }
    for name, text in texts.items():
        if not _storable_text(text):
            raise BadRequest(f"The receipt's {name} is not text a database can store.")
    if not 0 < len(receipt.provider_message_id) <= MESSAGE_ID_MAX_LENGTH:
        raise BadRequest("The receipt's message id is empty or longer than any we store.")
    if receipt.at is not None:
        latest = timezone.now() + CLOCK_SKEW
        if timezone.is_naive(receipt.at) or not EARLIEST_REPORT <= receipt.at <= latest:
            raise BadRequest(f"The receipt's time {receipt.at.isoformat()} cannot be right.")
    return receipt


def _storable_text(text: str) -> bool:
    """No NUL and no unpaired surrogate: PostgreSQL stores neither."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return "\x00" not in text
