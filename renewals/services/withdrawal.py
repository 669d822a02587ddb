"""Withdrawing from a contract inside its withdrawal period (Directive 2011/83/EU, Art. 11a).

A withdrawal ends the contract at once: auto-renewal goes off through
:func:`~renewals.services.cancel_auto_renewal` and the subscription is ``canceled``. Refunding
what was paid is the processor's business and :class:`~renewals.gateways.base.BillingGateway`
has no refund operation, so the package records the withdrawal and sends
:data:`~renewals.signals.contract_withdrawn`; the project's receiver refunds.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from ..exceptions import NoWithdrawalRight, WithdrawalPeriodOver
from ..models import RevokedVia, Status, Subscription
from ..models.declaration import contract_number
from ..policies import get_pack
from ..signals import contract_withdrawn
from ..types import Actor
from .audit import record_event
from .cancellation import cancel_auto_renewal
from .confirmations import enqueue_confirmation
from .consent import ensure_may_act


def withdrawal_deadline(subscription: Subscription) -> dt.datetime | None:
    """The first instant after the subscription's withdrawal period; ``None`` when its rule
    pack gives no right of withdrawal.

    The period is the pack's ``withdrawal_days`` whole days, counted from the day after the
    contract was concluded (``created_at``) and ending at the end of the last day, in the
    subscription's zone (Regulation 1182/71, Art. 3): a contract concluded on 3 June can be
    withdrawn from until 17 June, 24:00.
    """
    days = get_pack(subscription.policy).cancellation.withdrawal_days
    if days is None:
        return None
    concluded_on = subscription.local(subscription.created_at).date()
    last_day = concluded_on + dt.timedelta(days=days)
    return dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=subscription.zone)


def can_withdraw(subscription: Subscription, at: dt.datetime) -> bool:
    """Whether the subscription can be withdrawn from at ``at``: its pack gives the right,
    the period is running and the contract has not ended."""
    deadline = withdrawal_deadline(subscription)
    return (
        deadline is not None and at < deadline and subscription.can_transition_to(Status.CANCELED)
    )


def withdraw_from_contract(
    subscription: Subscription, *, actor: Actor, at: dt.datetime | None = None
) -> Subscription:
    """End the contract on the consumer's withdrawal received at ``at`` (default: now).

    Raises :class:`~renewals.exceptions.NotAllowed` if ``actor`` may not act for the
    subscription (:func:`~renewals.services.consent.ensure_may_act`),
    :class:`~renewals.exceptions.NoWithdrawalRight` when the rule pack gives none,
    :class:`~renewals.exceptions.WithdrawalPeriodOver` after the period, and
    :class:`~renewals.exceptions.IllegalTransition` when the contract has already ended;
    each before anything changes. Otherwise switches auto-renewal off, ends the subscription
    (``canceled``, no next renewal) and records ``contract_withdrawn``; once committed, the
    consumer is sent the acknowledgment with its date and time, and
    :data:`~renewals.signals.contract_withdrawn` is sent for the refund.
    """
    ensure_may_act(subscription, actor)
    at = at or timezone.now()
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        deadline = withdrawal_deadline(subscription)
        if deadline is None:
            raise NoWithdrawalRight(subscription.policy)
        if at >= deadline:
            raise WithdrawalPeriodOver(deadline)
        # Ended first, so the cancellation records (and confirms) no term running on.
        subscription.transition_to(Status.CANCELED, next_renewal_at=None)
        event = record_event(
            "contract_withdrawn",
            subscription=subscription,
            actor=actor,
            at=at,
            data={"contract": contract_number(subscription), "deadline": deadline},
        )
        enqueue_confirmation(event)
        cancel_auto_renewal(subscription, actor=actor, via=RevokedVia.WITHDRAWAL)
        transaction.on_commit(
            lambda: contract_withdrawn.send(
                sender=Subscription, subscription=subscription, withdrawn_at=at, actor=actor
            ),
            robust=True,
        )
    subscription.refresh_from_db()
    return subscription
