"""Send a notification to a recipient over one or more channels, once per key.

:func:`send` creates one :class:`~notifications.models.Delivery` per channel (and, for push,
per device) under the key ``f"{idempotency_key}:{channel}[:{device pk}]"``. The row is inserted
in the same transaction that hands the message to the backend and records the outcome, so a
concurrent call with the same key waits on the unique index, then finds the row and sends
nothing. That transaction is durable: a caller's transaction cannot roll back the record of a
message a provider accepted, so :func:`send` refuses to run inside one. A retryable failure
leaves the delivery ``queued``: calling :func:`send` again with the same key retries exactly
those, which is why the key makes retrying safe. A crash after a provider accepted a message
but before the commit leaves no row, so the next call sends it again: at least once.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Min
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from .backends import channel_backends
from .backends.base import BaseBackend, SMSBackend
from .conf import CHANNEL_NAMES, notifications_settings
from .exceptions import BackendError
from .message_templates import MessageTemplate, Rendered, check_sms_length, get_template
from .messages import Message, PushMessage, SendResult, SMSMessage
from .models import Delivery, Device
from .phone import mask, mask_numbers, mask_token, normalize
from .recipients import Recipient, get_resolver
from .status import clean_error, record_status

logger = logging.getLogger(__name__)

Status = Delivery.Status
Strategy = Literal["all", "first_success"]


@dataclass(frozen=True)
class Notification:
    """What to say: a registered template's key, its fields, an optional locale that
    overrides the recipient's, and an optional link a tap on the push opens."""

    template_key: str
    context: Mapping[str, Any]
    locale: str | None = None
    url: str | None = None


@dataclass
class DispatchResult:
    """What :func:`send` did.

    ``deferred_until`` is set when nothing was sent because of quiet hours or the rate limit
    (``reason`` says which); call again with the same key after that time. ``skipped`` maps a
    channel to why it could not reach the recipient (no phone number, no active device), and
    ``"push:<device pk>"`` to why that device was passed over (no alias for its provider).
    """

    deliveries: list[Delivery] = field(default_factory=list)
    deferred_until: dt.datetime | None = None
    reason: Literal["", "quiet_hours", "rate_limited"] = ""
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        """At least one delivery was accepted by its provider (sent or delivered)."""
        return any(_is_accepted(d) for d in self.deliveries)

    @property
    def pending(self) -> list[Delivery]:
        """Deliveries still queued after a retryable failure."""
        return [d for d in self.deliveries if d.status == Status.QUEUED]


@dataclass(frozen=True)
class _Target:
    suffix: str
    recipient: str  # masked
    message: Message
    backend: BaseBackend[Any]
    device: Device | None = None

    def key(self, dispatch_key: str) -> str:
        """This target's delivery key: ``k:sms``, ``k:push:<device pk>``."""
        return f"{dispatch_key}:{self.suffix}"


def send(
    recipient: Any,
    message: Notification,
    *,
    channels: Sequence[str],
    strategy: Strategy = "all",
    idempotency_key: str,
    reference: str = "",
) -> DispatchResult:
    """Send ``message`` to ``recipient`` (a user, resolved by ``RECIPIENT_RESOLVER``, or a
    :class:`~notifications.recipients.Recipient`).

    ``strategy="all"`` uses every channel; ``"first_success"`` tries ``channels`` in order and
    stops at the first one a provider accepts. ``reference`` is stored on each delivery for the
    caller to find them again. Raises :class:`~notifications.exceptions.MessageError` (bad
    fields, SMS too long) and :class:`~notifications.exceptions.InvalidRecipient` before
    anything is stored. Raises :class:`~django.db.transaction.TransactionManagementError` inside a
    transaction: call it from a task or ``transaction.on_commit()``.
    """
    unknown = set(channels) - set(CHANNEL_NAMES)
    if not channels or unknown:
        raise ValueError(f"channels must be some of {CHANNEL_NAMES}, got {channels!r}.")
    if strategy not in ("all", "first_success"):
        raise ValueError(f"strategy must be 'all' or 'first_success', got {strategy!r}.")
    if not idempotency_key:
        raise ValueError("An idempotency_key is required.")
    if not isinstance(recipient, Recipient):
        recipient = get_resolver()(recipient)
    if recipient.phone:
        recipient.phone = normalize(recipient.phone)
    template = get_template(message.template_key)
    rendered = template.render(message.context, message.locale or recipient.locale)
    if "sms" in channels and recipient.phone:
        check_sms_length(rendered.text.sms)

    result = DispatchResult(
        deliveries=list(Delivery.objects.filter(dispatch_key=idempotency_key).order_by("pk"))
    )
    plan = [
        (channel, _targets(channel, recipient, rendered, message.url, result.skipped))
        for channel in channels
    ]
    first_call = not result.deliveries
    if not first_call and _nothing_left(result, plan, idempotency_key, strategy):
        return result
    now = timezone.now()
    quiet_until = _quiet_until(recipient.time_zone, now)
    if quiet_until is not None:
        result.deferred_until, result.reason = quiet_until, "quiet_hours"
        return result
    recipient_key = recipient.key
    if first_call:
        limited_until = _rate_limited_until(recipient_key, idempotency_key, now)
        if limited_until is not None:
            result.deferred_until, result.reason = limited_until, "rate_limited"
            return result

    result.deliveries = []
    base = {
        "recipient_key": recipient_key,
        "user": recipient.user,
        "template_key": rendered.key,
        "locale": rendered.locale,
        "dispatch_key": idempotency_key,
        "reference": reference,
        "queued_at": now,
    }
    for _channel, targets in plan:
        by_alias: dict[str, list[_Target]] = {}
        for target in targets:
            by_alias.setdefault(target.backend.alias, []).append(target)
        deliveries = [
            delivery
            for group in by_alias.values()
            for delivery in _send_targets(group, base, template, rendered, first_call)
        ]
        result.deliveries += deliveries
        if strategy == "first_success" and any(_is_accepted(d) for d in deliveries):
            break
    return result


def _nothing_left(
    result: DispatchResult,
    plan: list[tuple[str, list[_Target]]],
    idempotency_key: str,
    strategy: Strategy,
) -> bool:
    """Whether an earlier call with this key already did all there is to do: every target
    has its delivery and none waits for a retry (or, for ``first_success``, one was accepted).
    A call cut short between two channels leaves targets without a delivery: not done."""
    if strategy == "first_success" and result.accepted:
        return True
    recorded = {delivery.idempotency_key for delivery in result.deliveries}
    every_target = all(
        target.key(idempotency_key) in recorded for _, targets in plan for target in targets
    )
    return every_target and not result.pending


def _is_accepted(delivery: Delivery) -> bool:
    return delivery.status in (Status.SENT, Status.DELIVERED)


def _quiet_until(zone: ZoneInfo, now: dt.datetime) -> dt.datetime | None:
    """When quiet hours end, if ``now`` falls inside them in ``zone``."""
    hours = notifications_settings.QUIET_HOURS
    if hours is None:
        return None
    start, end = hours
    local = now.astimezone(zone)
    inside = start <= local.hour < end if start < end else local.hour >= start or local.hour < end
    if not inside:
        return None
    day = local.date() if local.hour < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(end), tzinfo=zone).astimezone(dt.UTC)


def _rate_limited_until(
    recipient_key: str, dispatch_key: str, now: dt.datetime
) -> dt.datetime | None:
    """When the recipient may be notified again, if ``RATE_LIMIT`` is reached now."""
    limit = notifications_settings.RATE_LIMIT
    if limit is None:
        return None
    count, seconds = limit
    window = dt.timedelta(seconds=seconds)
    recent = (
        Delivery.objects.filter(recipient_key=recipient_key, queued_at__gt=now - window)
        .exclude(dispatch_key=dispatch_key)
        .values("dispatch_key")
        .annotate(first=Min("queued_at"))
        .order_by("first")
    )
    firsts = [row["first"] for row in recent[:count]]
    return firsts[0] + window if len(firsts) >= count else None


def _targets(
    channel: str,
    recipient: Recipient,
    rendered: Rendered,
    url: str | None,
    skipped: dict[str, str],
) -> list[_Target]:
    """The messages of ``channel`` with the backend of each; notes in ``skipped`` what
    cannot be sent."""
    text = rendered.text
    if channel == "sms":
        if not recipient.phone:
            skipped[channel] = "no phone number"
            return []
        [sms_backend] = channel_backends(channel).values()
        sms = SMSMessage(to=recipient.phone, body=text.sms)
        return [_Target("sms", mask(recipient.phone), sms, sms_backend)]
    devices = [device for device in recipient.devices if device.active]
    if not devices:
        skipped[channel] = "no active push device"
        return []
    backends = channel_backends(channel)
    targets = []
    for device in devices:
        backend = backends.get(device.provider, backends.get(""))
        if backend is None:
            skipped[f"push:{device.pk}"] = f"no push alias for provider {device.provider!r}"
            continue
        push = PushMessage(
            token=device.token,
            title=text.push_title,
            body=text.push_body,
            platform=device.platform,
            url=url,
        )
        targets.append(
            _Target(f"push:{device.pk}", mask_token(device.token), push, backend, device)
        )
    return targets


class _Collision(Exception):
    """Another call inserted a delivery of the same key first."""


@contextmanager
def _durable_atomic() -> Iterator[None]:
    """``transaction.atomic(durable=True)``, refusing to start inside a transaction with an
    error that says what to do."""
    entered = False
    try:
        with transaction.atomic(durable=True):
            entered = True
            yield
    except RuntimeError as exc:
        if entered:
            raise
        raise TransactionManagementError(
            "notifications.dispatch.send() cannot run inside a transaction, whose rollback "
            "would lose the record of messages already sent; call it from a task or "
            "transaction.on_commit()."
        ) from exc


def _send_targets(
    targets: list[_Target],
    base: dict[str, Any],
    template: MessageTemplate,
    rendered: Rendered,
    first_call: bool,
) -> list[Delivery]:
    """The deliveries of ``targets`` (one backend's), created or claimed in one durable
    transaction that sends those claimed.

    A first call inserts every delivery without a savepoint (a collision rolls back before
    anything is sent); otherwise, or after a collision, each delivery is claimed by
    :func:`_claim`.
    """
    backend = targets[0].backend
    fields = {**base, "channel": backend.channel, "backend_alias": backend.alias}
    if first_call:
        try:
            with _durable_atomic():
                claimed = _insert(fields, targets)
                _deliver(backend, template, rendered, claimed)
            return [delivery for delivery, _ in claimed]
        except _Collision:
            pass
    with _durable_atomic():
        claims = [(*_claim(fields, target), target) for target in targets]
        claimed = [(delivery, target) for delivery, mine, target in claims if mine]
        if claimed:
            _deliver(backend, template, rendered, claimed)
    return [delivery for delivery, _, _ in claims]


def _create(fields: dict[str, Any], target: _Target) -> Delivery:
    return Delivery.objects.create(
        **fields,
        recipient=target.recipient,
        device=target.device,
        idempotency_key=target.key(fields["dispatch_key"]),
    )


def _insert(fields: dict[str, Any], targets: list[_Target]) -> list[tuple[Delivery, _Target]]:
    try:
        return [(_create(fields, target), target) for target in targets]
    except IntegrityError:
        raise _Collision from None


def _claim(fields: dict[str, Any], target: _Target) -> tuple[Delivery, bool]:
    """The delivery for ``target`` and whether this call must send it.

    This call sends when it inserted the row, or when the row is still queued and no other
    call holds it (``skip_locked``).
    """
    try:
        with transaction.atomic():
            return _create(fields, target), True
    except IntegrityError:
        pass
    key = target.key(fields["dispatch_key"])
    queued = (
        Delivery.objects.select_for_update(skip_locked=True)
        .filter(idempotency_key=key, status=Status.QUEUED)
        .first()
    )
    if queued is not None:
        return queued, True
    return Delivery.objects.get(idempotency_key=key), False


def _prepare(
    message: Message,
    delivery: Delivery,
    backend: BaseBackend[Any],
    template: MessageTemplate,
    fields: dict[str, str],
) -> Message:
    """``message`` with what the backend may need: the delivery's id, the template key and,
    for template-only SMS providers, the approved template's code and parameters."""
    metadata = {"delivery_id": delivery.pk, "template_key": delivery.template_key}
    if isinstance(message, SMSMessage) and isinstance(backend, SMSBackend):
        return replace(
            message,
            template_code=backend.template_code_for(delivery.template_key),
            template_params=template.provider_params(backend.provider, fields),
            metadata=metadata,
        )
    return replace(message, metadata=metadata)


def _deliver(
    backend: BaseBackend[Any],
    template: MessageTemplate,
    rendered: Rendered,
    claimed: list[tuple[Delivery, _Target]],
) -> None:
    messages = [
        (delivery, _prepare(target.message, delivery, backend, template, rendered.fields))
        for delivery, target in claimed
    ]
    with backend:
        for start in range(0, len(messages), backend.batch_size):
            chunk = messages[start : start + backend.batch_size]
            results = _send_chunk(backend, [message for _, message in chunk])
            for (delivery, _), outcome in zip(chunk, results, strict=True):
                _record(delivery, outcome)


def _send_chunk(backend: BaseBackend[Any], messages: list[Message]) -> list[SendResult]:
    """The backend's results; any exception makes every message of the chunk a retry result,
    so that the rows of messages the provider accepted are still recorded."""
    try:
        return backend.send_messages(messages)
    except BackendError as exc:
        logger.warning("Backend %r failed: %s", backend.alias, mask_numbers(str(exc)))
        outcome = SendResult.retry("backend_error", str(exc))
    except Exception as exc:
        logger.error(
            "Backend %r raised; %d message(s) stay queued.\n%s",
            backend.alias,
            len(messages),
            mask_numbers("".join(traceback.format_exception(exc))),
        )
        outcome = SendResult.retry("backend_exception", f"{type(exc).__name__}: {exc}")
    return [outcome] * len(messages)


def _record(delivery: Delivery, outcome: SendResult) -> None:
    """Save ``outcome`` on ``delivery``, whose row this transaction has locked, in one UPDATE."""
    delivery.attempts += 1
    delivery.provider_message_id = outcome.provider_message_id
    delivery.error_code, delivery.error_message = clean_error(
        outcome.error_code, outcome.error_message
    )
    fields = ["attempts", "provider_message_id", "error_code", "error_message"]
    if outcome.ok:
        record_status(delivery, Status.SENT, update_fields=fields, locked=True)
    elif outcome.permanent:
        record_status(delivery, Status.FAILED, update_fields=fields, locked=True)
        if outcome.token_invalid and delivery.device_id is not None:
            Device.objects.filter(pk=delivery.device_id).update(active=False)
    else:
        delivery.save(update_fields=fields)
    logger.info(
        "Delivery %s (%s to %s, attempt %s): %s %s",
        delivery.pk,
        delivery.channel,
        delivery.recipient,
        delivery.attempts,
        delivery.status,
        outcome.error_code,
    )
