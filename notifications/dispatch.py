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

:func:`send_many` does the same for many calls at once (the renewals sweep uses it): the
deliveries of up to ``REQUESTS_PER_TRANSACTION`` calls are inserted together, handed to each
backend in chunks, and recorded with one UPDATE, in one durable transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Min
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from .backends import channel_backends
from .backends.base import BaseBackend, SMSBackend, raised
from .conf import CHANNEL_NAMES, notifications_settings
from .db import insert_rows
from .email_address import mask_email, normalize_email
from .exceptions import BackendError, InvalidRecipient, MessageError, NotificationsError
from .message_templates import (
    MessageTemplate,
    Rendered,
    check_sms_length,
    get_template,
    render_email_html,
)
from .messages import EmailMessage, Message, PushMessage, SendResult, SMSMessage
from .models import Delivery, Device
from .phone import mask, mask_numbers, mask_token, normalize
from .recipients import Recipient, get_resolver
from .status import clean_error, record_statuses

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


#: How many :func:`send_many` requests share one durable transaction: more makes fewer
#: statements and commits, fewer bounds what a crash before the commit sends again. 500 is
#: one renewals sweep batch (``RENEWALS["SWEEP_BATCH_SIZE"]``'s default).
REQUESTS_PER_TRANSACTION = 500


@dataclass(frozen=True)
class Request:
    """The arguments of one :func:`send` call, for :func:`send_many`."""

    recipient: Any
    message: Notification
    channels: Sequence[str]
    idempotency_key: str
    strategy: Strategy = "all"
    reference: str = ""


@dataclass(frozen=True)
class _Target:
    """One message to send: to one channel's address or one device, by one backend."""

    suffix: str
    recipient: str  # masked
    message: Message
    backend: BaseBackend[Any]
    template: MessageTemplate
    fields: Mapping[str, str]  # the rendered template's fields, for provider parameters
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
    call = _prepare_call(
        Request(recipient, message, channels, idempotency_key, strategy, reference)
    )
    result = DispatchResult(
        deliveries=list(Delivery.objects.filter(dispatch_key=idempotency_key).order_by("pk")),
        skipped=call.skipped,
    )
    first_call = not result.deliveries
    if not first_call and _nothing_left(result, call.plan, idempotency_key, strategy):
        return result
    now = timezone.now()
    if first_call:
        firsts = _recent_firsts({call.recipient.key}, now)
        deferred = _deferral(call, now, firsts)
    else:
        deferred = _deferral(call, now, None)
    if deferred is not None:
        result.deferred_until, result.reason = deferred
        return result

    result.deliveries = []
    base = _base_fields(call, now)
    for _channel, targets in call.plan:
        deliveries = [
            delivery
            for group in _by_backend(targets).values()
            for delivery in _send_targets(group, base, first_call)
        ]
        result.deliveries += deliveries
        if strategy == "first_success" and any(_is_accepted(d) for d in deliveries):
            break
    return result


def send_many(requests: Sequence[Request]) -> list[DispatchResult | NotificationsError]:
    """:func:`send` for many requests, with the same guarantees, in a few statements.

    Requests with strategy ``all`` whose key has no delivery yet are sent together,
    ``REQUESTS_PER_TRANSACTION`` at a time: their deliveries inserted at once, handed to each
    backend in chunks and recorded with one UPDATE, in one durable transaction (a crash
    between a provider's answer and the commit resends at most one such group). Every other
    request (a retry, ``first_success``, a key another call inserted meanwhile) goes through
    :func:`send`. A request's own problem
    (:class:`~notifications.exceptions.InvalidRecipient`,
    :class:`~notifications.exceptions.MessageError`) is returned in its place.
    """
    results: list[DispatchResult | NotificationsError | None] = [None] * len(requests)
    calls: dict[int, _Call] = {}
    for index, request in enumerate(requests):
        if request.strategy != "all":
            continue
        try:
            calls[index] = _prepare_call(request)
        except (InvalidRecipient, MessageError) as exc:
            results[index] = exc
    keys = {requests[index].idempotency_key for index in calls}
    retries = set(
        Delivery.objects.filter(dispatch_key__in=keys).values_list("dispatch_key", flat=True)
    )
    now = timezone.now()
    firsts = _recent_firsts({call.recipient.key for call in calls.values()}, now)
    batch: dict[int, _Call] = {}
    for index, call in calls.items():
        if call.request.idempotency_key in retries:
            continue
        deferred = _deferral(call, now, firsts)
        result = results[index] = DispatchResult(skipped=call.skipped)
        if deferred is None:
            firsts.setdefault(call.recipient.key, []).append(now)
            batch[index] = call
        else:
            result.deferred_until, result.reason = deferred
    indexes = list(batch)
    for start in range(0, len(indexes), REQUESTS_PER_TRANSACTION):
        group = {index: batch[index] for index in indexes[start : start + REQUESTS_PER_TRANSACTION]}
        try:
            _send_batch(group, results, now)
        except _Collision:
            for index in group:
                results[index] = None
    for index, request in enumerate(requests):
        if results[index] is None:
            try:
                results[index] = send(
                    request.recipient,
                    request.message,
                    channels=request.channels,
                    strategy=request.strategy,
                    idempotency_key=request.idempotency_key,
                    reference=request.reference,
                )
            except (InvalidRecipient, MessageError) as exc:
                results[index] = exc
    return [result for result in results if result is not None]


@dataclass
class _Call:
    """A request made ready to send: its recipient resolved, its message rendered, and the
    targets of each channel."""

    request: Request
    recipient: Recipient
    rendered: Rendered
    plan: list[tuple[str, list[_Target]]]
    skipped: dict[str, str]


def _prepare_call(request: Request) -> _Call:
    """Check and resolve ``request``; raise before anything is stored."""
    channels, strategy = request.channels, request.strategy
    unknown = set(channels) - set(CHANNEL_NAMES)
    if not channels or unknown:
        raise ValueError(f"channels must be some of {CHANNEL_NAMES}, got {channels!r}.")
    if strategy not in ("all", "first_success"):
        raise ValueError(f"strategy must be 'all' or 'first_success', got {strategy!r}.")
    if not request.idempotency_key:
        raise ValueError("An idempotency_key is required.")
    recipient = request.recipient
    if not isinstance(recipient, Recipient):
        recipient = get_resolver()(recipient)
    if recipient.phone:
        recipient.phone = normalize(recipient.phone)
    if recipient.email:
        recipient.email = normalize_email(recipient.email)
    message = request.message
    template = get_template(message.template_key)
    rendered = template.render(message.context, message.locale or recipient.locale)
    if "sms" in channels and recipient.phone:
        check_sms_length(rendered.text.sms)
    skipped: dict[str, str] = {}
    plan = [
        (channel, _targets(channel, recipient, template, rendered, message.url, skipped))
        for channel in channels
    ]
    return _Call(request, recipient, rendered, plan, skipped)


def _base_fields(call: _Call, now: dt.datetime) -> dict[str, Any]:
    """The fields every delivery of ``call`` shares."""
    return {
        "recipient_key": call.recipient.key,
        "user": call.recipient.user,
        "template_key": call.rendered.key,
        "locale": call.rendered.locale,
        "dispatch_key": call.request.idempotency_key,
        "reference": call.request.reference,
        "queued_at": now,
    }


def _by_backend(targets: list[_Target]) -> dict[str, list[_Target]]:
    by_alias: dict[str, list[_Target]] = {}
    for target in targets:
        by_alias.setdefault(target.backend.alias, []).append(target)
    return by_alias


def _deferral(
    call: _Call, now: dt.datetime, firsts: dict[str, list[dt.datetime]] | None
) -> tuple[dt.datetime, Literal["quiet_hours", "rate_limited"]] | None:
    """Until when, and why, ``call`` must wait: quiet hours, or (for a first call, with the
    recipients' recent sends in ``firsts``) the rate limit."""
    quiet_until = _quiet_until(call.recipient.time_zone, now)
    if quiet_until is not None:
        return quiet_until, "quiet_hours"
    if firsts is not None:
        limited_until = _limited_until(firsts.get(call.recipient.key, []))
        if limited_until is not None:
            return limited_until, "rate_limited"
    return None


def _send_batch(
    batch: dict[int, _Call],
    results: list[DispatchResult | NotificationsError | None],
    now: dt.datetime,
) -> None:
    """Insert every delivery of ``batch``, send them backend by backend and record the
    outcomes, in one durable transaction; a key another call inserted first raises
    :class:`_Collision` before anything is sent."""
    rows: list[tuple[int, Delivery, _Target]] = []
    for index, call in batch.items():
        base = _base_fields(call, now)
        for _channel, targets in call.plan:
            for target in targets:
                delivery = Delivery(
                    **base,
                    channel=target.backend.channel,
                    backend_alias=target.backend.alias,
                    recipient=target.recipient,
                    device=target.device,
                    idempotency_key=target.key(base["dispatch_key"]),
                )
                rows.append((index, delivery, target))
    with _durable_atomic():
        try:
            insert_rows([delivery for _, delivery, _ in rows])
        except IntegrityError:
            raise _Collision from None
        by_alias: dict[str, list[tuple[Delivery, _Target]]] = {}
        for _, delivery, target in rows:
            by_alias.setdefault(target.backend.alias, []).append((delivery, target))
        groups = list(by_alias.values())
        outcomes = _send_side_by_side([_messages(claimed) for claimed in groups])
        _record(
            [delivery for claimed in groups for delivery, _ in claimed],
            [outcome for group in outcomes for outcome in group],
        )
    for index, delivery, _ in rows:
        result = results[index]
        assert isinstance(result, DispatchResult)
        result.deliveries.append(delivery)


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


def _recent_firsts(recipient_keys: set[str], now: dt.datetime) -> dict[str, list[dt.datetime]]:
    """For each recipient, when each of their notifications in the ``RATE_LIMIT`` window
    was first queued, earliest first (one query for them all)."""
    limit = notifications_settings.RATE_LIMIT
    if limit is None or not recipient_keys:
        return {}
    window = dt.timedelta(seconds=limit[1])
    recent = (
        Delivery.objects.filter(recipient_key__in=recipient_keys, queued_at__gt=now - window)
        .values("recipient_key", "dispatch_key")
        .annotate(first=Min("queued_at"))
        .order_by("first")
    )
    firsts: dict[str, list[dt.datetime]] = {}
    for row in recent:
        firsts.setdefault(row["recipient_key"], []).append(row["first"])
    return firsts


def _limited_until(firsts: list[dt.datetime]) -> dt.datetime | None:
    """When the recipient may be notified again, if their ``firsts`` reach ``RATE_LIMIT``."""
    limit = notifications_settings.RATE_LIMIT
    if limit is None or len(firsts) < limit[0]:
        return None
    return firsts[-limit[0]] + dt.timedelta(seconds=limit[1])


def _targets(
    channel: str,
    recipient: Recipient,
    template: MessageTemplate,
    rendered: Rendered,
    url: str | None,
    skipped: dict[str, str],
) -> list[_Target]:
    """The messages of ``channel`` with the backend of each; notes in ``skipped`` what
    cannot be sent (also a channel ``NOTIFICATIONS['CHANNELS']`` does not configure)."""
    if channel not in notifications_settings.CHANNELS:
        skipped[channel] = f"not configured: NOTIFICATIONS['CHANNELS'] has no {channel!r}"
        return []
    text = rendered.text
    if channel == "sms":
        if not recipient.phone:
            skipped[channel] = "no phone number"
            return []
        sms = SMSMessage(to=recipient.phone, body=text.sms)
        return [_single_target(channel, mask(recipient.phone), sms, template, rendered)]
    if channel == "email":
        if not recipient.email:
            skipped[channel] = "no email address"
            return []
        email = EmailMessage(
            to=recipient.email,
            subject=text.email_subject,
            body=text.email_body,
            html=render_email_html(rendered),
        )
        return [_single_target(channel, mask_email(recipient.email), email, template, rendered)]
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
            _Target(
                f"push:{device.pk}",
                mask_token(device.token),
                push,
                backend,
                template,
                rendered.fields,
                device,
            )
        )
    if not targets:
        skipped[channel] = "no push alias for the providers of the recipient's devices"
    return targets


def _single_target(
    channel: str, masked: str, message: Message, template: MessageTemplate, rendered: Rendered
) -> _Target:
    """The target of a channel served by one alias (SMS, email)."""
    [backend] = channel_backends(channel).values()
    return _Target(channel, masked, message, backend, template, rendered.fields)


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


def _send_targets(targets: list[_Target], base: dict[str, Any], first_call: bool) -> list[Delivery]:
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
                _deliver(backend, claimed)
            return [delivery for delivery, _ in claimed]
        except _Collision:
            pass
    with _durable_atomic():
        claims = [(*_claim(fields, target), target) for target in targets]
        claimed = [(delivery, target) for delivery, mine, target in claims if mine]
        if claimed:
            _deliver(backend, claimed)
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


def _for_backend(delivery: Delivery, target: _Target) -> Message:
    """The target's message with what its backend may need: the delivery's id and
    idempotency key, the template key and, for template-only SMS providers, the approved
    template's code and parameters."""
    message, backend = target.message, target.backend
    metadata = {
        "delivery_id": delivery.pk,
        "idempotency_key": delivery.idempotency_key,
        "template_key": delivery.template_key,
    }
    if isinstance(message, SMSMessage) and isinstance(backend, SMSBackend):
        return replace(
            message,
            template_code=backend.template_code_for(delivery.template_key),
            template_params=target.template.provider_params(backend.provider, target.fields),
            metadata=metadata,
        )
    return replace(message, metadata=metadata)


def _messages(claimed: list[tuple[Delivery, _Target]]) -> tuple[BaseBackend[Any], list[Message]]:
    """The backend of ``claimed`` (one backend's deliveries) and their messages."""
    return claimed[0][1].backend, [_for_backend(delivery, target) for delivery, target in claimed]


def _deliver(backend: BaseBackend[Any], claimed: list[tuple[Delivery, _Target]]) -> None:
    """Hand the claimed deliveries' messages to ``backend`` and record every outcome."""
    _record([delivery for delivery, _ in claimed], _send_all(*_messages(claimed)))


def _send_all(backend: BaseBackend[Any], messages: list[Message]) -> list[SendResult]:
    """Every message through ``backend``, ``chunk_size`` per call; one result each."""
    outcomes: list[SendResult] = []
    with backend:
        for start in range(0, len(messages), backend.chunk_size):
            outcomes += _send_chunk(backend, messages[start : start + backend.chunk_size])
    return outcomes


def _send_side_by_side(
    groups: list[tuple[BaseBackend[Any], list[Message]]],
) -> list[list[SendResult]]:
    """:func:`_send_all` for each backend's group; thread-safe backends send at the same
    time (SMS and push providers answer in parallel), the others in this thread."""
    threaded = [group for group in groups if group[0].thread_safe][1:]
    futures = {id(group): _side_pool.submit(_send_all, *group) for group in threaded}
    return [
        futures[id(group)].result() if id(group) in futures else _send_all(*group)
        for group in groups
    ]


#: Threads for the other backends' groups while this thread sends one.
_side_pool = ThreadPoolExecutor(4, "notifications-dispatch")


def _send_chunk(backend: BaseBackend[Any], messages: list[Message]) -> list[SendResult]:
    """The backend's results; any exception makes every message of the chunk a retry result,
    so that the rows of messages the provider accepted are still recorded."""
    try:
        return backend.send_messages(messages)
    except BackendError as exc:
        logger.warning("Backend %r failed: %s", backend.alias, mask_numbers(str(exc)))
        outcome = SendResult.retry("backend_error", str(exc))
    except Exception as exc:
        outcome = raised(backend.alias, len(messages), exc)
    return [outcome] * len(messages)


def _record(deliveries: list[Delivery], outcomes: list[SendResult]) -> None:
    """Save each outcome on its delivery (rows this transaction holds locked) in one UPDATE:
    ``sent``, ``failed``, or still ``queued`` for a retry."""
    statuses: list[tuple[Delivery, str | None]] = []
    invalid_devices = []
    for delivery, outcome in zip(deliveries, outcomes, strict=True):
        delivery.attempts += 1
        delivery.provider_message_id = outcome.provider_message_id
        delivery.error_code, delivery.error_message = clean_error(
            outcome.error_code, outcome.error_message
        )
        status = Status.SENT if outcome.ok else Status.FAILED if outcome.permanent else None
        statuses.append((delivery, status))
        if outcome.permanent and outcome.token_invalid and delivery.device_id is not None:
            invalid_devices.append(delivery.device_id)
    fields = ["attempts", "provider_message_id", "error_code", "error_message"]
    record_statuses(statuses, update_fields=fields)
    if invalid_devices:
        Device.objects.filter(pk__in=invalid_devices).update(active=False)
    for delivery, outcome in zip(deliveries, outcomes, strict=True):
        logger.info(
            "Delivery %s (%s to %s, attempt %s): %s %s",
            delivery.pk,
            delivery.channel,
            delivery.recipient,
            delivery.attempts,
            delivery.status,
            outcome.error_code,
        )
