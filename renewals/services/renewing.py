"""Renewing subscriptions when their renewal is due, as far as the renewal gate allows.

:func:`run_due_renewals` takes each due subscription in its own transaction, locked with
``select_for_update(skip_locked=True)`` and checked again to be due, so several workers never
take the same one and a worker that comes after another finds nothing left to do. The
gateway calls are made under that lock and are idempotent for the same renewal, so a failure
or a crash rolls the subscription's step back and the next run takes it again.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..gateways import gateway_for
from ..models import LIVE_STATUSES, Status, Subscription
from ..policies import GateRemedy
from .audit import record_event
from .cancellation import cancel_auto_renewal
from .gate import GateDecision, renewal_gate
from .scheduling import earliest_noticeable_renewal, plan_notices, required_rules

logger = logging.getLogger("renewals")

Outcome = Literal["renewed", "deferred", "lapsed", "expired"]


@dataclass
class RenewalRun:
    """What one :func:`run_due_renewals` run did, by subscription count."""

    renewed: int = 0
    deferred: int = 0  # held, with its notices sent again before a later renewal time
    lapsed: int = 0  # held, auto-renewal switched off, and ended
    expired: int = 0  # auto-renewal was off: the term ran out
    failed: int = 0  # rolled back (a gateway error, say): the next run takes it again


def due_subscriptions(now: dt.datetime) -> QuerySet[Subscription]:
    """Live subscriptions whose renewal (or deferred renewal, or term's end) is due."""
    return Subscription.objects.filter(status__in=LIVE_STATUSES, next_renewal_at__lte=now)


def run_due_renewals(now: dt.datetime | None = None) -> RenewalRun:
    """Renew, hold or end every subscription due at ``now`` (default: now).

    With auto-renewal on, the renewal gate decides. Allowed: the gateway releases the renewal
    if it was held and renews; the subscription is active on its new term, on the upcoming
    terms if any, with that term's notices planned. Refused: the gateway holds the renewal,
    the subscription is ``on_hold`` and the rule pack's remedy runs: ``defer`` moves the
    renewal to the rules' lead time after now and plans its notices afresh, to go out at once;
    ``lapse`` switches auto-renewal off (the user is sent the cancellation confirmation) and
    the subscription ends. With auto-renewal off, the term has run out: it ends. Safe to run
    again at any time; every step is in the audit log.
    """
    now = now or timezone.now()
    run = RenewalRun()
    due = due_subscriptions(now).order_by("next_renewal_at", "pk").values_list("pk", flat=True)
    for pk in list(due):
        try:
            outcome = _take(pk, now)
        except Exception:
            logger.exception("Renewal of subscription %s failed; the next run tries again.", pk)
            run.failed += 1
            continue
        if outcome is not None:
            setattr(run, outcome, getattr(run, outcome) + 1)
    return run


def _take(pk: int, now: dt.datetime) -> Outcome | None:
    """Act on one subscription, if it is still due and no other worker holds it."""
    with transaction.atomic():
        subscription = (
            due_subscriptions(now).select_for_update(skip_locked=True).filter(pk=pk).first()
        )
        if subscription is None:
            return None
        if not subscription.auto_renew:
            _expire(subscription)
            return "expired"
        renewal_at = subscription.next_renewal_at
        assert renewal_at is not None
        decision = renewal_gate(subscription, renewal_at)
        if decision.allowed:
            _renew(subscription, renewal_at)
            return "renewed"
        hold_refused_renewal(subscription, renewal_at, decision)
        if decision.remedy is GateRemedy.DEFER:
            _defer(subscription, renewal_at, decision, now)
            return "deferred"
        _lapse(subscription, renewal_at, decision)
        return "lapsed"


def _renew(subscription: Subscription, renewal_at: dt.datetime) -> None:
    gateway = gateway_for(subscription)
    released = subscription.held_renewal_at
    if released is not None:
        gateway.release_renewal(subscription, released)
    period = gateway.renew(subscription, renewal_at)
    terms = subscription.renewal_terms()
    _move(
        subscription,
        Status.ACTIVE,
        terms=terms,
        upcoming_terms=None,
        held_renewal_at=None,
        current_period_start=period.start,
        next_renewal_at=period.end,
    )
    record_event(
        "renewed",
        subscription=subscription,
        data={
            "renewal_at": renewal_at,
            "released": released,
            "gateway": subscription.gateway,
            "terms": terms.pk,
            "terms_hash": terms.content_hash,
            "amount": terms.amount,
            "currency": terms.currency,
            "period_start": period.start,
            "next_renewal_at": period.end,
        },
    )
    plan_notices(subscription)


def hold_refused_renewal(
    subscription: Subscription, renewal_at: dt.datetime, decision: GateDecision
) -> None:
    """Keep the renewal the gate refused (``decision``) from being charged: at the gateway
    once, for the renewal first held, and ``on_hold`` here. The renewal run and the Stripe
    webhook (a renewal's draft invoice, ``invoice.created``) both hold through this; the
    caller holds the subscription's row lock."""
    changes: dict[str, Any] = {}
    if subscription.held_renewal_at is None:
        gateway_for(subscription).hold_renewal(subscription, renewal_at)
        changes["held_renewal_at"] = renewal_at
        record_event(
            "renewal_held",
            subscription=subscription,
            data={
                "renewal_at": renewal_at,
                "gateway": subscription.gateway,
                "reasons": list(decision.reasons),
                "remedy": decision.remedy.value if decision.remedy else None,
            },
        )
    _move(subscription, Status.ON_HOLD, **changes)


def _defer(
    subscription: Subscription, renewal_at: dt.datetime, decision: GateDecision, now: dt.datetime
) -> None:
    """Renew no sooner than the rules' lead time (plus the retry margin) after now, and plan
    the notices of that renewal, whose windows are open now.

    A deferred trial end stays the trial's end, so the rules for trials still apply to it.
    """
    rules = required_rules(subscription, renewal_at)
    deferred_to = earliest_noticeable_renewal(rules, subscription.zone, now=now)
    changes = {"next_renewal_at": deferred_to}
    if subscription.trial_ends_at == renewal_at:
        changes["trial_ends_at"] = deferred_to
    _move(subscription, Status.ON_HOLD, **changes)
    record_event(
        "renewal_deferred",
        subscription=subscription,
        data={
            "renewal_at": renewal_at,
            "held_renewal_at": subscription.held_renewal_at,
            "deferred_to": deferred_to,
            "reasons": list(decision.reasons),
        },
    )
    plan_notices(subscription)


def _lapse(subscription: Subscription, renewal_at: dt.datetime, decision: GateDecision) -> None:
    reasons = "; ".join(decision.reasons)
    record_event(
        "renewal_lapsed",
        subscription=subscription,
        data={"renewal_at": renewal_at, "reasons": list(decision.reasons)},
    )
    cancel_auto_renewal(subscription, actor=None, via="system", reason=reasons)
    subscription.refresh_from_db()
    _expire(subscription)


def _expire(subscription: Subscription) -> None:
    """The term ran out with auto-renewal off: the subscription ends."""
    before = subscription.status
    subscription.transition_to(Status.EXPIRED)
    record_event(
        "subscription_expired",
        subscription=subscription,
        data={"ended_at": subscription.next_renewal_at, "status_before": before},
    )


def _move(subscription: Subscription, status: str, **changes: Any) -> None:
    """Save ``changes`` with ``status``, moving there if the subscription is not there yet."""
    if subscription.status != status:
        subscription.transition_to(status, **changes)
        return
    for name, value in changes.items():
        setattr(subscription, name, value)
    subscription.save(update_fields=["updated_at", *changes])
