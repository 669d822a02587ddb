"""The delivery status model: the one place a status changes, receipts, and the sweep that
applies stored receipts and expires deliveries whose receipt never came."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from .backends import get_backend_class
from .conf import notifications_settings
from .db import update_rows
from .messages import Receipt
from .models import Delivery, UnmatchedReceipt
from .phone import mask_numbers
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
#: A status only moves forward in this order; the final statuses come last (3), so never move.
_ORDER = {Status.QUEUED: 0, Status.SENT: 1, Status.EXPIRED: 2}
#: How long a receipt for an unknown message is kept for its delivery to appear.
UNMATCHED_RECEIPT_RETENTION = dt.timedelta(days=7)


def clean_error(code: str, message: str) -> tuple[str, str]:
    """A provider's error as stored: the code cut to its column, numbers masked in the text."""
    return code[:100], mask_numbers(message)


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

    A status only moves forward (queued, sent, expired, then a final status): a final status
    never changes, ``expired`` only becomes a final one, and ``sent`` never follows ``sent``;
    other calls change nothing and return ``False``. The delivery is locked and re-read, so
    concurrent receipts cannot both win; ``locked=True`` says this transaction already holds
    the row lock (it inserted the row or selected it for update), so ``delivery.status`` is
    current and is not re-read. ``update_fields`` names other fields of ``delivery`` saved in
    the same UPDATE. Phone numbers in ``error_message`` are masked; a status that follows
    ``expired`` replaces its ``receipt_timeout`` error.
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
        if not _moves_forward(old_status, status):
            return False
        fields = [*update_fields, *_apply(delivery, status, at or timezone.now())]
        if error_code or error_message or old_status == Status.EXPIRED:
            delivery.error_code, delivery.error_message = clean_error(error_code, error_message)
            fields += ["error_code", "error_message"]
        delivery.save(update_fields=fields)
    _announce([(delivery, old_status, status)])
    return True


def record_statuses(
    changes: Sequence[tuple[Delivery, str | None]], *, update_fields: Sequence[str] = ()
) -> None:
    """:func:`record_status` with ``locked=True`` for many deliveries, in one UPDATE.

    Each delivery moves to its status (``None``: it keeps its status, and only
    ``update_fields`` are saved); every change is announced, the receivers in one savepoint.
    """
    now = timezone.now()
    fields = set(update_fields)
    announced = []
    for delivery, status in changes:
        if status is not None and _moves_forward(delivery.status, Status(status)):
            announced.append((delivery, delivery.status, Status(status)))
            fields.update(_apply(delivery, Status(status), now))
    update_rows([delivery for delivery, _ in changes], sorted(fields))
    _announce(announced)


def _moves_forward(old_status: str, status: str) -> bool:
    return _ORDER.get(Status(status), 3) > _ORDER.get(Status(old_status), 3)


def _apply(delivery: Delivery, status: Status, at: dt.datetime) -> list[str]:
    """Set ``status`` and its time on ``delivery``; return the fields to save."""
    delivery.status = status
    setattr(delivery, TIME_FIELDS[status], at)
    return ["status", TIME_FIELDS[status]]


def _announce(changes: Sequence[tuple[Delivery, str, str]]) -> None:
    """Send ``delivery_updated`` for each change. Receivers run in a savepoint: if one fails,
    the changes are announced again one savepoint each, so the failure is logged and rolled
    back alone and can never undo the status a provider's answer established (and cause a
    resend)."""
    if not changes or not delivery_updated.has_listeners(Delivery):
        return
    try:
        with transaction.atomic():
            for delivery, old_status, new_status in changes:
                _send_signal(delivery, old_status, new_status)
        return
    except Exception:
        if len(changes) == 1:
            _log_receiver_failure(*changes[0])
            return
    for change in changes:
        try:
            with transaction.atomic():
                _send_signal(*change)
        except Exception:
            _log_receiver_failure(*change)


def _send_signal(delivery: Delivery, old_status: str, new_status: str) -> None:
    delivery_updated.send(
        sender=Delivery, delivery=delivery, old_status=old_status, new_status=new_status
    )


def _log_receiver_failure(delivery: Delivery, old_status: str, new_status: str) -> None:
    logger.exception(
        "A delivery_updated receiver failed for delivery %s (%s -> %s); the status stands.",
        delivery.pk,
        old_status,
        new_status,
    )


def apply_receipt(*, backend_alias: str, receipt: Receipt) -> Delivery | None:
    """Apply a provider's receipt to the delivery it names.

    A receipt for an unknown message id (its sending transaction has not committed yet) is
    stored as an :class:`~notifications.models.UnmatchedReceipt`, which
    :func:`apply_unmatched_receipts` applies later, and ``None`` is returned. Duplicate and
    out-of-order receipts are harmless: see :func:`record_status`.
    """
    delivery = Delivery.objects.filter(
        backend_alias=backend_alias, provider_message_id=receipt.provider_message_id
    ).first()
    if delivery is None:
        logger.info(
            "Receipt for unknown message %r from backend %r stored for later.",
            receipt.provider_message_id,
            backend_alias,
        )
        error_code, error_message = clean_error(receipt.error_code, receipt.error_message)
        UnmatchedReceipt.objects.create(
            backend_alias=backend_alias,
            provider_message_id=receipt.provider_message_id,
            status=receipt.status,
            at=receipt.at,
            error_code=error_code,
            error_message=error_message,
            received_at=timezone.now(),
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


def apply_unmatched_receipts(now: dt.datetime | None = None) -> tuple[int, int]:
    """Apply the stored receipts whose delivery has appeared (at the time they name, else
    when they came), drop those kept longer than ``UNMATCHED_RECEIPT_RETENTION``; return how
    many of each."""
    now = now or timezone.now()
    deliveries = Delivery.objects.filter(
        backend_alias=OuterRef("backend_alias"),
        provider_message_id=OuterRef("provider_message_id"),
    )
    applied = 0
    for stored in UnmatchedReceipt.objects.filter(Exists(deliveries)).order_by("pk"):
        receipt = Receipt(
            provider_message_id=stored.provider_message_id,
            status=stored.status,  # type: ignore[arg-type]  # stored from a Receipt
            at=stored.at or stored.received_at,
            error_code=stored.error_code,
            error_message=stored.error_message,
        )
        with transaction.atomic():
            apply_receipt(backend_alias=stored.backend_alias, receipt=receipt)
            stored.delete()
        applied += 1
    dropped, _ = UnmatchedReceipt.objects.filter(
        received_at__lt=now - UNMATCHED_RECEIPT_RETENTION
    ).delete()
    if dropped:
        logger.warning("Dropped %d receipt(s) for messages that never appeared.", dropped)
    return applied, dropped


def expire_stale(now: dt.datetime | None = None) -> int:
    """Expire sent deliveries with no receipt after ``RECEIPT_TIMEOUT`` hours; return how many.

    Only aliases whose backend reports receipts are considered: for the others "sent" is final
    in practice and nothing will ever come. A receipt that comes later still moves an expired
    delivery to the status it reports.
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
