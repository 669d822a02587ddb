"""The confirmation a user keeps after signing up, switching auto-renewal off or on again,
or declaring a contract's end.

``subscribe`` (where the rule pack requires an acknowledgment of the terms:
:func:`acknowledgment_required`), ``cancel_auto_renewal``, ``resume_auto_renewal``,
``declare`` (for a cancellation that names a contract) and ``withdraw_from_contract`` enqueue
:func:`send_confirmation` as a django-q2 task once their change is committed;
:func:`send_pending_confirmations`, run periodically, sends those the queue lost. A
confirmation goes out under the dispatch key ``confirm:<audit event id>``, so however often it
is tried the user gets it once. The acknowledgment of a sign-up is recorded in the audit log
(``acknowledgment_sent``, with its deliveries) once a provider has accepted it.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django_q.tasks import async_task

from notifications.dispatch import Notification, send
from notifications.exceptions import InvalidRecipient
from notifications.message_templates import get_template
from notifications.models import Delivery
from notifications.recipients import get_resolver

from ..links import manage_url
from ..models import AuditEvent, RenewalTerms, Status, Subscription
from ..models.terms import format_amount
from ..notice_messages import (
    ACKNOWLEDGMENT,
    CANCELLATION_RECEIVED,
    CANCELLED,
    RESUMED,
    TRIAL_ACKNOWLEDGMENT,
    WITHDRAWN,
    local_time,
)
from ..policies import Channel, available_packs, get_pack
from .audit import record_event

logger = logging.getLogger("renewals")

#: Audit event kind -> the template that confirms it.
CONFIRMED = {
    "auto_renewal_cancelled": CANCELLED,
    "auto_renewal_resumed": RESUMED,
    "cancellation_declared": CANCELLATION_RECEIVED,
    "contract_withdrawn": WITHDRAWN,
}
#: The audit event of a sign-up, which an acknowledgment of the terms confirms where the rule
#: pack requires one (:data:`ACKNOWLEDGMENT`, or :data:`TRIAL_ACKNOWLEDGMENT` for a free trial).
SUBSCRIBED = "subscribed"
#: Recorded once a provider has accepted the acknowledgment, with its deliveries.
ACKNOWLEDGED = "acknowledgment_sent"
#: Recorded when the user could not be told (no phone number, no device): not tried again.
SKIPPED = "confirmation_skipped"
#: The statuses of a delivery a provider has accepted (``DispatchResult.accepted``).
_ACCEPTED = frozenset({Delivery.Status.SENT, Delivery.Status.DELIVERED})


def acknowledgment_required(policy: str, at: dt.datetime, zone: ZoneInfo) -> bool:
    """Whether a subscription started at ``at`` under the rule pack ``policy`` is sent an
    acknowledgment of its terms: the pack requires one (``consent.acknowledgment_required``)
    and is in force on the day of ``at`` in ``zone``, the subscription's (the user's day: a
    law applies to contracts entered from a date)."""
    pack = get_pack(policy)
    return pack.consent.acknowledgment_required and pack.in_force_on(at.astimezone(zone).date())


def confirmation_key(event_id: int) -> str:
    """The dispatch key of the confirmation of audit event ``event_id``."""
    return f"confirm:{event_id}"


def enqueue_confirmation(event: AuditEvent) -> None:
    """Send the confirmation of ``event`` from a django-q2 task once the current transaction
    commits; a broker that cannot take the task is logged, and the repair sends it later."""
    event_id = event.pk
    transaction.on_commit(lambda: async_task(send_confirmation, event_id), robust=True)


def send_confirmation(event_id: int) -> bool:
    """Confirm the sign-up, cancel, resume, cancellation declaration or withdrawal recorded by
    audit event ``event_id`` to the user; ``True`` if a provider has accepted it.

    Sent on the channels of :func:`confirmation_channels`, stating the date and time in the
    subscription's zone and the user's locale. The acknowledgment of a sign-up (the terms
    agreed to, the cancellation policy, how to cancel and the manage page's link) goes on one
    of them, email first (:func:`acknowledgment_channels`), and is recorded once
    (``acknowledgment_sent``) when a provider accepts it. A user who cannot be reached on any
    of them is logged and recorded (``confirmation_skipped``), never an error. Call it outside
    a transaction, as :func:`notifications.dispatch.send`.
    """
    event = AuditEvent.objects.select_related("subscription__user", "subscription__terms").get(
        pk=event_id
    )
    subscription = event.subscription
    if subscription is None or not _has_confirmation(event, subscription):
        raise ValueError(f"Audit event {event_id} ({event.kind}) has no confirmation.")
    template = get_template(_template_key(event))
    try:
        recipient = get_resolver()(subscription.user)
    except InvalidRecipient as exc:
        _skip(event, str(exc))
        return False
    locale = template.locale_for(recipient.locale or subscription.terms.locale)
    fields = _fields(event, subscription, locale)
    acknowledgment = event.kind == SUBSCRIBED
    result = send(
        recipient,
        Notification(template.key, fields, locale=locale, url=fields.get("manage_url")),
        channels=(acknowledgment_channels if acknowledgment else confirmation_channels)(
            subscription
        ),
        strategy="first_success" if acknowledgment else "all",
        idempotency_key=confirmation_key(event.pk),
        reference=f"renewals.subscription:{subscription.pk}",
    )
    if not result.deliveries and result.deferred_until is None:
        _skip(event, "; ".join(f"{c}: {why}" for c, why in sorted(result.skipped.items())))
    elif acknowledgment and result.accepted:
        _record_acknowledgment(event, subscription, template.key, result.deliveries)
    return result.accepted


def confirmation_channels(subscription: Subscription) -> list[str]:
    """The channels the subscription's rule pack sends notices on, else the channels it
    accepts (a pack without notice rules)."""
    pack = get_pack(subscription.policy)
    channels = dict.fromkeys(str(channel) for rule in pack.notices for channel in rule.channels)
    return list(channels) or [str(channel) for channel in pack.channels]


def acknowledgment_channels(subscription: Subscription) -> list[str]:
    """:func:`confirmation_channels` with email first: the acknowledgment goes on the first
    of them a provider accepts, and an email is a copy the user can keep."""
    return sorted(confirmation_channels(subscription), key=lambda channel: channel != Channel.EMAIL)


def _has_confirmation(event: AuditEvent, subscription: Subscription) -> bool:
    if event.kind == SUBSCRIBED:
        return acknowledgment_required(subscription.policy, event.occurred_at, subscription.zone)
    return event.kind in CONFIRMED


def _template_key(event: AuditEvent) -> str:
    if event.kind != SUBSCRIBED:
        return CONFIRMED[event.kind]
    trial = event.data["status"] == Status.TRIALING
    return TRIAL_ACKNOWLEDGMENT if trial else ACKNOWLEDGMENT


def _fields(event: AuditEvent, subscription: Subscription, locale: str) -> dict[str, str]:
    zone, data = subscription.zone, event.data
    service_name = subscription.terms.service_name
    if event.kind == SUBSCRIBED:
        return _acknowledgment_fields(event, zone, locale)
    if event.kind in {"cancellation_declared", "contract_withdrawn"}:
        return {
            "service_name": service_name,
            "contract": data["contract"],
            "received_at": local_time(event.occurred_at, zone, locale, "DATETIME_FORMAT"),
        }
    if event.kind == "auto_renewal_cancelled":
        ends_at = data["service_ends_at"]
        effective = dt.datetime.fromisoformat(ends_at) if ends_at else event.occurred_at
        return {
            "service_name": service_name,
            "effective_date": local_time(effective, zone, locale, "DATETIME_FORMAT"),
        }
    return {
        "service_name": service_name,
        "renewal_date": local_time(
            dt.datetime.fromisoformat(data["next_renewal_at"]), zone, locale, "DATETIME_FORMAT"
        ),
        "amount": format_amount(Decimal(data["amount"]), data["currency"]),
        "currency": data["currency"],
    }


def _acknowledgment_fields(event: AuditEvent, zone: ZoneInfo, locale: str) -> dict[str, str]:
    """The terms the sign-up recorded by ``event`` agreed to, with its first renewal (the end
    of its free trial, if it has one), in ``locale``."""
    terms = RenewalTerms.objects.get(pk=event.data["terms"])
    first_renewal = dt.datetime.fromisoformat(event.data["next_renewal_at"])
    with translation.override(locale):
        price = terms.price_display
    return {
        "service_name": terms.service_name,
        "price": price,
        "renewal_date": local_time(first_renewal, zone, locale, "DATETIME_FORMAT"),
        "renewal_wording": terms.renewal_wording,
        "how_to_cancel": terms.cancellation_method,
        "manage_url": manage_url(),
    }


def _record_acknowledgment(
    event: AuditEvent, subscription: Subscription, template_key: str, deliveries: list[Delivery]
) -> None:
    """Record that the acknowledgment of ``event`` went out, by which deliveries: once per
    subscription, checked under its row lock, however often the task or the repair runs."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.audit_events.filter(kind=ACKNOWLEDGED).exists():
            return
        record_event(
            ACKNOWLEDGED,
            subscription=subscription,
            data={
                "event": event.pk,
                "template": template_key,
                "deliveries": [
                    {"id": d.pk, "channel": d.channel, "status": d.status} for d in deliveries
                ],
            },
        )


def _skip(event: AuditEvent, reason: str) -> None:
    logger.warning(
        "No confirmation of %s (audit event %s) for subscription %s: %s",
        event.kind,
        event.pk,
        event.subscription_id,
        reason,
    )
    with transaction.atomic():
        record_event(
            SKIPPED,
            subscription=event.subscription,
            data={"event": event.pk, "kind": event.kind, "reason": reason},
        )


def send_pending_confirmations(now: dt.datetime | None = None, *, days: int = 3) -> int:
    """Send the confirmations of the last ``days`` days' confirmed events that have no
    delivery yet (their task was lost, or quiet hours deferred them) or whose delivery waits
    for a retry, and record the acknowledgments a provider accepted but a crash left
    unrecorded; return how many were tried. Safe to run at any time: each goes out once.
    """
    now = now or timezone.now()
    since = now - dt.timedelta(days=days)
    recent = AuditEvent.objects.filter(occurred_at__gte=since, occurred_at__lte=now)
    events = _confirmed_events(recent)
    skipped = set(recent.filter(kind=SKIPPED).values_list("data__event", flat=True))
    statuses: dict[str, set[str]] = {}
    deliveries = Delivery.objects.filter(dispatch_key__in=[confirmation_key(pk) for pk in events])
    for key, status in deliveries.values_list("dispatch_key", "status"):
        statuses.setdefault(key, set()).add(status)
    todo = [
        pk
        for pk, acknowledgment in events.items()
        if pk not in skipped
        and _unfinished(statuses.get(confirmation_key(pk), set()), acknowledgment=acknowledgment)
    ]
    for pk in todo:
        try:
            send_confirmation(pk)
        except Exception:
            logger.exception("Confirmation of audit event %s failed; the next repair retries.", pk)
    return len(todo)


def _confirmed_events(recent: QuerySet[AuditEvent]) -> dict[int, bool]:
    """The events of ``recent`` that have a confirmation, each mapped to whether it is a
    sign-up whose acknowledgment is not recorded yet (one recorded is left out)."""
    confirmed = recent.filter(kind__in=CONFIRMED, subscription__isnull=False)
    acknowledging = [
        code for code, pack in available_packs().items() if pack.consent.acknowledgment_required
    ]
    signups = (
        recent.filter(kind=SUBSCRIBED, subscription__policy__in=acknowledging)
        .exclude(subscription__audit_events__kind=ACKNOWLEDGED)
        .values_list("pk", "subscription__policy", "occurred_at", "subscription__time_zone")
    )
    return dict.fromkeys(confirmed.values_list("pk", flat=True), False) | {
        pk: True
        for pk, policy, at, zone in signups
        if acknowledgment_required(policy, at, ZoneInfo(zone))
    }


def _unfinished(statuses: set[str], *, acknowledgment: bool) -> bool:
    """Whether a confirmation whose deliveries have ``statuses`` is to be tried (again): it
    has none yet, one waits for a retry, or it is an acknowledgment a provider accepted that
    is not recorded yet (its ``send`` sends nothing more, and records it)."""
    if not statuses or Delivery.Status.QUEUED in statuses:
        return True
    return acknowledgment and bool(statuses & _ACCEPTED)
