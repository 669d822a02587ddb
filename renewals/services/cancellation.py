"""Switching auto-renewal off (and on again), and telling the gateway."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from ..exceptions import IllegalTransition
from ..gateways import gateway_for
from ..models import AuditEvent, Consent, RevokedVia, Subscription
from ..signals import auto_renewal_changed
from ..types import Actor
from .audit import actor_label, record_event
from .confirmations import enqueue_confirmation
from .consent import ConsentEvidence, ensure_may_act, record_consent
from .scheduling import plan_notices, withdraw_notices

logger = logging.getLogger("renewals")

#: How far the gateway's clock may be from ours. A state sent from here is recorded as the
#: gateway's as of this long before it was sent, in whole seconds as the gateway dates its
#: events (:func:`gateway_state_as_of`); the gateway's events up to this long either side of
#: the time so meant are not ordered by time (``renewals.services.stripe_events``).
GATEWAY_CLOCK_SKEW = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class CancellationResult:
    subscription: Subscription
    changed: bool  # False when auto-renewal was already off: nothing happened
    service_ends_at: dt.datetime | None  # the paid term runs until then


def cancel_auto_renewal(
    subscription: Subscription, *, actor: Actor, via: str, reason: str | None = None
) -> CancellationResult:
    """Switch auto-renewal off: the current term runs out and nothing more is charged.

    Idempotent: a second call changes nothing and records nothing. Records who, when and
    through which route (``via``: a :class:`~renewals.models.RevokedVia` value), revokes the
    consent and withdraws pending notices. Once the change is committed it tells the gateway
    (unless the change was made there: ``via="gateway"``, which the gateway's webhook passes),
    sends ``auto_renewal_changed`` and sends the user a confirmation stating when the paid
    term ends. ``actor`` must be allowed to act for the subscription
    (:func:`~renewals.services.consent.ensure_may_act`).
    """
    ensure_may_act(subscription, actor)
    via = RevokedVia(via)
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if not subscription.auto_renew:
            return CancellationResult(subscription, False, subscription.next_renewal_at)
        now = timezone.now()
        _switch(subscription, enabled=False, gateway_knows=via is RevokedVia.GATEWAY)
        in_force = Consent.objects.filter(subscription=subscription, revoked_at__isnull=True)
        revoked_ids = list(in_force.select_for_update().values_list("pk", flat=True))
        Consent.objects.filter(pk__in=revoked_ids).update(
            revoked_at=now,
            revoked_via=via,
            revoked_by=actor if actor is not None and not isinstance(actor, str) else None,
            revoke_reason=reason or "",
        )
        revoked = list(Consent.objects.filter(pk__in=revoked_ids))  # as written, to bind
        withdrawn = withdraw_notices(subscription)
        event = record_event(
            "auto_renewal_cancelled",
            subscription=subscription,
            actor=actor,
            at=now,
            data={
                "via": via.value,
                "reason": reason or "",
                "service_ends_at": subscription.next_renewal_at,
                "consents_revoked": len(revoked),
                "notices_withdrawn": withdrawn,
            },
            evidence=revoked,
        )
        _announce(subscription, event, actor=actor, via=via)
    return CancellationResult(subscription, True, subscription.next_renewal_at)


def resume_auto_renewal(
    subscription: Subscription, *, evidence: ConsentEvidence | None, actor: Actor
) -> Subscription:
    """Switch auto-renewal on again; requires fresh consent to the terms the next renewal is
    charged at (:meth:`~renewals.models.Subscription.renewal_terms`, the upcoming ones when a
    new price is pending), given by an ``actor`` allowed to act for the subscription
    (:func:`~renewals.services.consent.ensure_may_act`).

    Once committed, the gateway and the ``auto_renewal_changed`` receivers are told, and the
    user is sent a confirmation stating the next renewal's date, time and amount.
    """
    ensure_may_act(subscription, actor)
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if not subscription.is_live:
            raise IllegalTransition(subscription.status, "auto-renewal on")
        if subscription.auto_renew:
            return subscription
        record_consent(subscription, evidence, actor=actor)
        _switch(subscription, enabled=True)
        terms = subscription.renewal_terms()
        event = record_event(
            "auto_renewal_resumed",
            subscription=subscription,
            actor=actor,
            data={
                "next_renewal_at": subscription.next_renewal_at,
                "amount": terms.amount,
                "currency": terms.currency,
                "by": actor_label(actor),
            },
        )
        plan_notices(subscription)
        _announce(subscription, event, actor=actor, via=None)
    return subscription


def _switch(subscription: Subscription, *, enabled: bool, gateway_knows: bool = False) -> None:
    """Save the new auto-renewal state, flagged for the gateway until it confirms (unless
    ``gateway_knows``: the change came from it)."""
    subscription.auto_renew = enabled
    subscription.gateway_sync_pending = not gateway_knows
    subscription.save(update_fields=["auto_renew", "gateway_sync_pending", "updated_at"])


def _announce(
    subscription: Subscription, event: AuditEvent, *, actor: Actor, via: RevokedVia | None
) -> None:
    """Once the change is committed (never for one rolled back): tell the gateway (unless
    it was the gateway that told us), the project's receivers, and the user. A failure of one
    is logged and does not stop the others, nor undo the change."""
    if subscription.gateway_sync_pending:
        transaction.on_commit(lambda: sync_gateway(subscription.pk), robust=True)
    transaction.on_commit(
        lambda: auto_renewal_changed.send(
            sender=Subscription,
            subscription=subscription,
            enabled=subscription.auto_renew,
            actor=actor,
            via=via,
        ),
        robust=True,
    )
    enqueue_confirmation(event)


def sync_gateway(subscription_id: int) -> bool:
    """Tell the subscription's gateway (:func:`~renewals.gateways.gateway_for`) its
    auto-renewal state; ``True`` if this call did.

    Runs after commit, holding the subscription's row lock across the gateway call, so two
    syncs (say, of a resume and the cancel right after it) reach the gateway in order and the
    last state sent is the current one. On any failure the flag stays set and
    ``renewals_reconcile`` tries again, so a crash between the two steps is repaired.
    Once the gateway has the state, its events created before the call are older than it
    (``gateway_event_created``, :func:`gateway_state_as_of` the call): a late one cannot
    switch auto-renewal back.
    """
    try:
        with transaction.atomic():
            subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
            if not subscription.gateway_sync_pending:
                return False  # another sync got there first
            started = gateway_state_as_of(timezone.now())
            gateway_for(subscription).set_auto_renew(subscription, subscription.auto_renew)
            subscription.gateway_sync_pending = False
            applied = subscription.gateway_event_created
            subscription.gateway_event_created = max(started, applied) if applied else started
            subscription.save(
                update_fields=["gateway_sync_pending", "gateway_event_created", "updated_at"]
            )
            record_event(
                "gateway_synced",
                subscription=subscription,
                data={"gateway": subscription.gateway, "auto_renew": subscription.auto_renew},
            )
    except Exception:
        # Whatever went wrong, the local change stands and the flag stays set for a retry.
        logger.exception("Gateway sync failed for subscription %s; will retry.", subscription_id)
        return False
    return True


def gateway_state_as_of(now: dt.datetime) -> dt.datetime:
    """The ``gateway_event_created`` of a state this package gives the gateway at ``now``
    (by our clock): whole seconds, :data:`GATEWAY_CLOCK_SKEW` earlier, so only the gateway's
    events surely older than it are taken as older."""
    return now.replace(microsecond=0) - GATEWAY_CLOCK_SKEW


def sync_pending_gateways() -> int:
    """Retry every unconfirmed gateway change; return how many the gateway now agrees with."""
    pending = Subscription.objects.filter(gateway_sync_pending=True).values_list("pk", flat=True)
    return sum(sync_gateway(pk) for pk in pending)
