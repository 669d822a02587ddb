"""Declarations that end a contract, made through a rule pack's statutory flow.

Germany (BGB § 312k) asks for a cancellation button that needs no login; the EU (Directive
2011/83/EU, Art. 11a) for a withdrawal function. Either way the consumer states who they are
and which contract they mean, and the declaration counts from the moment it is received,
whether or not the details match a contract on record. So :func:`declare` records every
declaration as made (a :class:`~renewals.models.ContractDeclaration` and an audit event that
commits to its content), then matches it: a contract the signed-in holder chose, or one whose
number and holder's email address or phone number on file agree with the details given. A
match is put into effect and confirmed by message to the holder's contact on file; a
declaration that matches nothing stays ``unmatched`` for staff. Nothing a consumer sees
depends on the match, so the form tells no stranger which contracts exist.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from notifications.exceptions import InvalidRecipient
from notifications.recipients import get_resolver

from ..exceptions import IllegalTransition, NotAllowed, WithdrawalRefused
from ..models import (
    LIVE_STATUSES,
    ContractDeclaration,
    DeclarationKind,
    DeclarationStatus,
    RevokedVia,
    Status,
    Subscription,
)
from ..policies import CancellationFlow, available_packs, get_pack
from ..signals import contract_declared
from ..types import Actor, User
from .audit import record_event
from .cancellation import cancel_auto_renewal
from .confirmations import enqueue_confirmation
from .withdrawal import can_withdraw, withdraw_from_contract

#: The kinds of declaration each flow takes.
KINDS = {
    CancellationFlow.TWO_STEP_BUTTON: (DeclarationKind.ORDINARY, DeclarationKind.EXTRAORDINARY),
    CancellationFlow.WITHDRAWAL: (DeclarationKind.WITHDRAWAL,),
}

#: A contract number as :func:`~renewals.models.declaration.contract_number` writes it.
CONTRACT_NUMBER = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class Statement:
    """What the consumer declared: who they are, which contract, and (for a cancellation)
    its kind, the reason for an extraordinary one, and the date it should end the contract
    (``None``: at the earliest possible date). ``phone`` is in E.164."""

    kind: DeclarationKind
    name: str
    contract_number: str
    email: str = ""
    phone: str = ""
    reason: str = ""
    ends_on: dt.date | None = None


def policies_with_flow(flow: CancellationFlow) -> list[str]:
    """The codes of the rule packs whose cancellation flow is ``flow``."""
    return sorted(
        code for code, pack in available_packs().items() if pack.cancellation.flow == flow
    )


def can_end(subscription: Subscription, flow: CancellationFlow, at: dt.datetime) -> bool:
    """Whether ``flow`` can end the subscription at ``at``: a cancellation one that still
    renews, a withdrawal one inside its withdrawal period (:func:`can_withdraw`)."""
    if flow is CancellationFlow.WITHDRAWAL:
        return can_withdraw(subscription, at)
    return subscription.is_live and subscription.auto_renew


def contracts_offered(
    user: User, flow: CancellationFlow, at: dt.datetime
) -> QuerySet[Subscription]:
    """The user's contracts under a pack with ``flow`` that it can end at ``at``
    (:func:`can_end`)."""
    mine = Subscription.objects.filter(user=user, policy__in=policies_with_flow(flow))
    open_ = mine.filter(status__in={Status.PENDING, *LIVE_STATUSES})
    return mine.filter(pk__in=[s.pk for s in open_ if can_end(s, flow, at)])


def find_contract(
    flow: CancellationFlow, number: str, *, email: str, phone: str
) -> Subscription | None:
    """The contract numbered ``number`` under a pack with ``flow``, if the email address or
    the phone number given is its holder's on file; else ``None``."""
    if not CONTRACT_NUMBER.fullmatch(number):
        return None
    contract = (
        Subscription.objects.select_related("user")
        .filter(pk=int(number), policy__in=policies_with_flow(flow))
        .first()
    )
    if contract is None or not _holder_reached_at(contract.user, email=email, phone=phone):
        return None
    return contract


def _holder_reached_at(user: User, *, email: str, phone: str) -> bool:
    on_file = getattr(user, user.get_email_field_name(), "") or ""
    if email and on_file and email.casefold() == on_file.casefold():
        return True
    if not phone:
        return False
    try:
        return get_resolver()(user).phone == phone
    except InvalidRecipient:  # no phone number and no device on file
        return False


def declare(
    policy: str,
    statement: Statement,
    *,
    declarant: User | None,
    contract: Subscription | None = None,
    at: dt.datetime | None = None,
) -> ContractDeclaration:
    """Record ``statement``, received at ``at`` (default: now) through the flow of rule pack
    ``policy``, and put it into effect on the contract it names.

    ``declarant`` is the signed-in consumer, if any; ``contract`` the one they chose among
    theirs (:class:`~renewals.exceptions.NotAllowed` if it is not theirs). Without a
    ``contract``, :func:`find_contract` looks for one. A cancellation whose date falls after
    the current term is ``scheduled`` until the term that includes it
    (:func:`apply_scheduled_cancellations`), else it switches auto-renewal off at once; a
    withdrawal ends the contract (:func:`~renewals.services.withdraw_from_contract`) or, out
    of its period, is ``refused``. A matched cancellation is confirmed by message with its
    date and time; once committed, :data:`~renewals.signals.contract_declared` is sent.
    """
    flow = get_pack(policy).cancellation.flow
    if statement.kind not in KINDS.get(flow, ()):
        raise ValueError(f"Rule pack {policy!r} ({flow}) takes no {statement.kind} declaration.")
    if contract is not None:
        if declarant is None:
            raise ValueError("A contract chosen from a list needs the signed-in declarant.")
        if contract.user_id != declarant.pk:
            raise NotAllowed(declarant, contract)
    at = at or timezone.now()
    with transaction.atomic():
        if contract is None:
            contract = find_contract(
                flow, statement.contract_number, email=statement.email, phone=statement.phone
            )
        declaration = ContractDeclaration.objects.create(
            policy=policy,
            kind=statement.kind,
            status=DeclarationStatus.UNMATCHED,
            received_at=at,
            declarant=declarant,
            subscription=contract,
            name=statement.name,
            email=statement.email,
            phone=statement.phone,
            contract_number=statement.contract_number,
            reason=statement.reason,
            ends_on=statement.ends_on,
        )
        actor = declarant or f"declaration:{declaration.pk}"
        event = record_event(
            "withdrawal_declared" if declaration.is_withdrawal else "cancellation_declared",
            subscription=contract,
            actor=actor,
            at=at,
            data={
                "declaration": declaration.pk,
                "policy": policy,
                "kind": statement.kind,
                "contract": statement.contract_number,
                "ends_on": statement.ends_on,
                "content_sha256": declaration.content_hash(),
            },
        )
        if contract is not None:
            if not declaration.is_withdrawal:  # a withdrawal is acknowledged once in effect
                enqueue_confirmation(event)
            _put_into_effect(declaration, contract, actor)
        transaction.on_commit(
            lambda: contract_declared.send(sender=ContractDeclaration, declaration=declaration),
            robust=True,
        )
    return declaration


def _put_into_effect(
    declaration: ContractDeclaration, contract: Subscription, actor: Actor
) -> None:
    reason = ""
    if declaration.is_withdrawal:
        try:
            withdraw_from_contract(contract, actor=actor, at=declaration.received_at)
        except (WithdrawalRefused, IllegalTransition) as exc:
            status, reason = DeclarationStatus.REFUSED, str(exc)
        else:
            status = DeclarationStatus.APPLIED
    elif _takes_effect_now(contract, declaration.ends_on):
        _cancel(declaration, contract, actor)
        status = DeclarationStatus.APPLIED
    else:
        status = DeclarationStatus.SCHEDULED
    _record_outcome(declaration, status, actor, reason=reason)


def _takes_effect_now(contract: Subscription, ends_on: dt.date | None) -> bool:
    """Whether switching auto-renewal off now ends the contract on or after ``ends_on``:
    the current term includes that date (or nothing renews any more)."""
    if ends_on is None or not contract.auto_renew or contract.next_renewal_at is None:
        return True
    return contract.local(contract.next_renewal_at).date() >= ends_on


def _cancel(declaration: ContractDeclaration, contract: Subscription, actor: Actor) -> None:
    cancel_auto_renewal(
        contract,
        actor=actor,
        via=RevokedVia.CANCELLATION_BUTTON,
        reason=declaration.reason or declaration.get_kind_display(),
    )


def _record_outcome(
    declaration: ContractDeclaration, status: DeclarationStatus, actor: Actor, *, reason: str = ""
) -> None:
    declaration.status = status
    declaration.applied_at = timezone.now() if status == DeclarationStatus.APPLIED else None
    declaration.save(update_fields=["status", "applied_at"])
    record_event(
        f"declaration_{status}",
        subscription=declaration.subscription,
        actor=actor,
        data={"declaration": declaration.pk, "reason": reason},
    )


def apply_scheduled_cancellations() -> int:
    """Switch auto-renewal off for each scheduled cancellation whose date the current term
    now includes; return how many. Run periodically (``renewals.apply_scheduled_cancellations``,
    hourly): a term is a day at the shortest, so none is missed."""
    scheduled = ContractDeclaration.objects.filter(
        status=DeclarationStatus.SCHEDULED
    ).select_related("subscription")
    due = [
        d.pk for d in scheduled if d.subscription and _takes_effect_now(d.subscription, d.ends_on)
    ]
    applied = 0
    for pk in due:
        with transaction.atomic():
            declaration = (
                ContractDeclaration.objects.select_for_update(of=("self",))
                .select_related("subscription", "declarant")
                .get(pk=pk)
            )
            contract = declaration.subscription
            if declaration.status != DeclarationStatus.SCHEDULED or contract is None:
                continue  # another run took it
            actor = declaration.declarant or f"declaration:{declaration.pk}"
            _cancel(declaration, contract, actor)
            _record_outcome(declaration, DeclarationStatus.APPLIED, actor)
            applied += 1
    return applied
