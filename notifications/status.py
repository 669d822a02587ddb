"""The delivery status model: the one place a status changes, receipts, and expiry."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from .backends import get_backend_class
from .conf import notifications_settings
from .messages import Receipt
from .models import Delivery
from .signals import delivery_updated

logger = logging.getLogger(__name__)

Status = Delivery.Status

#: The time field each status sets.
TIME_FIELDS = {
    Status.QUEUED: "queued_at",
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.FAILED: "failed_at",
    Status.UNDELIVERED: "undelivered_at",
    Status.EXPIRED: "expired_at",
}
_ORDER = {Status.QUEUED: 0, Status.SENT: 1}


def record_status(
    delivery: Delivery,
    status: str,
    *,
    at: dt.datetime | None = None,
    error_code: str = "",
    error_message: str = "",
    update_fields: Sequence[str] = (),
    locked: bool = False,
) -> bool:
    """Move ``delivery`` to ``status`` and send :data:`~notifications.signals.delivery_updated`.

    A final status never changes and ``sent`` never follows ``sent``; such calls change
    nothing and return ``False``. The delivery is locked and re-read, so concurrent receipts
    cannot both win; ``locked=True`` says this transaction already holds the row lock (it
    inserted the row or selected it for update), so ``delivery.status`` is current and is not
    re-read. ``update_fields`` names other fields of ``delivery`` saved in the same UPDATE.
    """
    status = Status(status)
    with transaction.atomic(savepoint=False):
        if not locked:
            delivery.status = (
                Delivery.objects.select_for_update()
                .values_list("status", flat=True)
                .get(pk=delivery.pk)
            )
        old_status = delivery.status
        if delivery.is_final or _ORDER.get(status, 2) <= _ORDER.get(Status(old_status), 2):
            return False
        delivery.status = status
        setattr(delivery, TIME_FIELDS[status], at or timezone.now())
        fields = [*update_fields, "status", TIME_FIELDS[status]]
        if error_code or error_message:
            delivery.error_code, delivery.error_message = error_code[:100], error_message
            fields += ["error_code", "error_message"]
        delivery.save(update_fields=fields)
    delivery_updated.send(
        sender=Delivery, delivery=delivery, old_status=old_status, new_status=status
    )
    return True


def apply_receipt(*, backend_alias: str, receipt: Receipt) -> Delivery | None:
    """Apply a provider's receipt to the delivery it names; ``None`` when the id is unknown.

    Duplicate and out-of-order receipts are harmless: see :func:`record_status`.
    """
    delivery = Delivery.objects.filter(
        backend_alias=backend_alias, provider_message_id=receipt.provider_message_id
    ).first()
    if delivery is None:
        logger.warning(
            "Receipt for unknown message %r from backend %r ignored.",
            receipt.provider_message_id,
            backend_alias,
        )
        return None
    record_status(
        delivery,
        receipt.status,
        at=receipt.at,
        error_code=receipt.error_code,
        error_message=receipt.error_message,
    )
    return delivery


def expire_stale(now: dt.datetime | None = None) -> int:
    """Expire sent deliveries with no receipt after ``RECEIPT_TIMEOUT`` hours; return how many.

    Only aliases whose backend reports receipts are considered: for the others "sent" is final
    in practice and nothing will ever come.
    """
    now = now or timezone.now()
    cutoff = now - dt.timedelta(hours=notifications_settings.RECEIPT_TIMEOUT)
    aliases = [
        alias
        for alias in notifications_settings.BACKENDS
        if get_backend_class(alias).supports_receipts
    ]
    stale = Delivery.objects.filter(
        status=Status.SENT, sent_at__lt=cutoff, backend_alias__in=aliases
    )
    expired = 0
    for delivery in stale.iterator():
        expired += record_status(delivery, Status.EXPIRED, at=now, error_code="receipt_timeout")
    return expired
