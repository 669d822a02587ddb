"""The confirmation a user keeps after switching auto-renewal off or on again, or after
declaring a contract's end.

``cancel_auto_renewal``, ``resume_auto_renewal``, ``declare`` (for a cancellation that names
a contract) and ``withdraw_from_contract`` enqueue :func:`send_confirmation` as a django-q2
task once their change is committed; :func:`send_pending_confirmations`, run
periodically, sends those the queue lost. A confirmation goes out under the dispatch key
``confirm:<audit event id>``, so however often it is tried the user gets it once.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from notifications.dispatch import Notification, send
from notifications.exceptions import InvalidRecipient
from notifications.message_templates import get_template
from notifications.models import Delivery
from notifications.recipients import get_resolver

from ..models import AuditEvent, Subscription
from ..models.terms import format_amount
from ..notice_messages import CANCELLATION_RECEIVED, CANCELLED, RESUMED, WITHDRAWN, local_time
from ..policies import get_pack
from .audit import record_event

logger = logging.getLogger("renewals")

#: Audit event kind -> the template that confirms it.
CONFIRMED = {
    "auto_renewal_cancelled": CANCELLED,
    "auto_renewal_resumed": RESUMED,
    "cancellation_declared": CANCELLATION_RECEIVED,
    "contract_withdrawn": WITHDRAWN,
}
#: Recorded when the user could not be told (no phone number, no device): not tried again.
SKIPPED = "confirmation_skipped"


def confirmation_key(event_id: int) -> str:
    """The dispatch key of the confirmation of audit event ``event_id``."""
    return f"confirm:{event_id}"


def enqueue_confirmation(event: AuditEvent) -> None:
    """Send the confirmation of ``event`` from a django-q2 task once the current transaction
    commits; a broker that cannot take the task is logged, and the repair sends it later."""
    event_id = event.pk
    transaction.on_commit(lambda: async_task(send_confirmation, event_id), robust=True)


def send_confirmation(event_id: int) -> bool:
    """Confirm the cancel, resume, cancellation declaration or withdrawal recorded by audit
    event ``event_id`` to the user, by SMS and push; ``True`` if a provider has accepted it.

    Sent on the channels of the subscription's rule pack's notices (SMS and push if it has
    none), stating the date and time in the subscription's zone and the user's locale. A user
    who cannot be reached on any of them is logged and recorded (``confirmation_skipped``),
    never an error. Call it outside a transaction, as :func:`notifications.dispatch.send`.
    """
    event = AuditEvent.objects.select_related("subscription__user", "subscription__terms").get(
        pk=event_id
    )
    if event.kind not in CONFIRMED or event.subscription is None:
        raise ValueError(f"Audit event {event_id} ({event.kind}) has no confirmation.")
    subscription = event.subscription
    template = get_template(CONFIRMED[event.kind])
    try:
        recipient = get_resolver()(subscription.user)
    except InvalidRecipient as exc:
        _skip(event, str(exc))
        return False
    locale = template.locale_for(recipient.locale or subscription.terms.locale)
    result = send(
        recipient,
        Notification(template.key, _fields(event, subscription, locale), locale=locale),
        channels=confirmation_channels(subscription),
        strategy="all",
        idempotency_key=confirmation_key(event.pk),
        reference=f"renewals.subscription:{subscription.pk}",
    )
    if not result.deliveries and result.deferred_until is None:
        _skip(event, "; ".join(f"{c}: {why}" for c, why in sorted(result.skipped.items())))
    return result.accepted


def confirmation_channels(subscription: Subscription) -> list[str]:
    """The channels the subscription's rule pack sends notices on, else SMS and push."""
    rules = get_pack(subscription.policy).notices
    channels = dict.fromkeys(str(channel) for rule in rules for channel in rule.channels)
    return list(channels) or ["sms", "push"]


def _fields(event: AuditEvent, subscription: Subscription, locale: str) -> dict[str, str]:
    zone, data = subscription.zone, event.data
    service_name = subscription.terms.service_name
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
    for a retry; return how many were tried. Safe to run at any time: each goes out once.
    """
    now = now or timezone.now()
    since = now - dt.timedelta(days=days)
    recent = AuditEvent.objects.filter(occurred_at__gte=since, occurred_at__lte=now)
    confirmed = recent.filter(kind__in=CONFIRMED, subscription__isnull=False)
    events = list(confirmed.values_list("pk", flat=True))
    skipped = set(recent.filter(kind=SKIPPED).values_list("data__event", flat=True))
    deliveries = Delivery.objects.filter(dispatch_key__in=[confirmation_key(pk) for pk in events])
    started = set(deliveries.values_list("dispatch_key", flat=True))
    waiting = set(
        deliveries.filter(status=Delivery.Status.QUEUED).values_list("dispatch_key", flat=True)
    )
    todo = [
        pk
        for pk in events
        if pk not in skipped
        and (confirmation_key(pk) not in started or confirmation_key(pk) in waiting)
    ]
    for pk in todo:
        try:
            send_confirmation(pk)
        except Exception:
            logger.exception("Confirmation of audit event %s failed; the next repair retries.", pk)
    return len(todo)
