"""The renewal gate: may this renewal be charged, and if not, why and what now."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db import transaction

from ..models import Consent, RenewalNotice, Subscription
from ..policies import GateRemedy, get_pack
from ..signals import renewal_held
from .audit import record_event
from .consent import new_price_awaits_consent
from .gate_evidence import relied_on
from .scheduling import required_rules

#: The audit event of a subscription brought in from its processor (``renewals_stripe_import``).
IMPORTED = "subscription_imported"
#: The gate's reason for a subscription imported without consent that its user has not yet
#: given here: its renewals are held (remedy ``defer``) until they do.
AWAITING_CONSENT = "imported without consent: the renewal waits for the user's consent"


@dataclass(frozen=True)
class GateDecision:
    """``allowed``, or the ``reasons`` it is not and the ``remedy`` the rule pack prescribes."""

    allowed: bool
    reasons: tuple[str, ...] = ()
    remedy: GateRemedy | None = None


def renewal_gate(subscription: Subscription, renewal_time: dt.datetime) -> GateDecision:
    """Decide whether the renewal at ``renewal_time`` may be charged, and record the answer.

    A renewal needs a live subscription with auto-renewal on, an unrevoked consent to its
    current terms or to the terms the renewal is charged at (its upcoming terms, which a
    resume consents to), and every notice its rule pack requires given inside its window.
    Without consent the remedy is ``lapse``: nothing can make that charge lawful; only a
    subscription imported from its processor whose user has not consented yet is held
    (``defer``) until they do (:func:`awaits_consent`). A missing notice gets the pack's
    remedy (``defer``: send it and renew later; ``lapse``). A renewal at a new price that the
    pack requires fresh consent to (``price_change.fresh_consent``) also needs an unrevoked
    consent to the upcoming terms; without it the remedy is the pack's
    ``price_change.without_consent``, unless a notice is missing too: then the notice's remedy
    applies, as the user may not have been asked yet.
    The audit event lists the evidence the decision read (:func:`.gate_evidence.relied_on`).
    A refusal sends ``renewal_held`` once the caller's transaction commits; acting on the
    decision is :func:`~renewals.services.renewing.run_due_renewals`'s.
    """
    subscription.refresh_from_db()
    reasons = _consent_reasons(subscription)
    if reasons:
        remedy = GateRemedy.DEFER if reasons == (AWAITING_CONSENT,) else GateRemedy.LAPSE
        decision = GateDecision(False, reasons, remedy)
    else:
        decision = _rules_decision(subscription, renewal_time)
    record_event(
        "renewal_gate",
        subscription=subscription,
        data={
            "renewal_at": renewal_time,
            "allowed": decision.allowed,
            "reasons": list(decision.reasons),
            "remedy": decision.remedy.value if decision.remedy else None,
            "evidence": relied_on(subscription, renewal_time),
        },
    )
    if not decision.allowed:
        transaction.on_commit(
            lambda: renewal_held.send(
                sender=Subscription,
                subscription=subscription,
                renewal_at=renewal_time,
                decision=decision,
            ),
            robust=True,
        )
    return decision


def _rules_decision(subscription: Subscription, renewal_time: dt.datetime) -> GateDecision:
    """The decision on a consented renewal: its notices, and consent to a new price."""
    pack = get_pack(subscription.policy)
    notice_reasons = _notice_reasons(subscription, renewal_time)
    price_reasons = _new_price_reasons(subscription, renewal_time)
    reasons = notice_reasons + price_reasons
    if not reasons:
        return GateDecision(True)
    remedy = pack.gate_remedy if notice_reasons else pack.price_change.without_consent
    return GateDecision(False, reasons, remedy)


def _new_price_reasons(subscription: Subscription, renewal_time: dt.datetime) -> tuple[str, ...]:
    if not new_price_awaits_consent(subscription, renewal_time):
        return ()
    return (
        f"no consent to the new price: the renewal charges "
        f"{subscription.renewal_terms().amount_display}, "
        f"{subscription.terms.amount_display} was agreed",
    )


def _consent_reasons(subscription: Subscription) -> tuple[str, ...]:
    if not subscription.is_live:
        return (f"the subscription is {subscription.status}",)
    if not subscription.auto_renew:
        return ("auto-renewal is off",)
    consented = Consent.objects.filter(
        subscription=subscription,
        revoked_at__isnull=True,
        terms_hash__in={subscription.terms.content_hash, subscription.renewal_terms().content_hash},
    ).exists()
    if consented:
        return ()
    if awaits_consent(subscription):
        return (AWAITING_CONSENT,)
    return ("no unrevoked consent to the current terms",)


def awaits_consent(subscription: Subscription) -> bool:
    """The subscription was imported from its processor and its user never consented here."""
    return (
        not Consent.objects.filter(subscription=subscription).exists()
        and subscription.audit_events.filter(kind=IMPORTED).exists()
    )


def _notice_reasons(subscription: Subscription, renewal_time: dt.datetime) -> tuple[str, ...]:
    rules = required_rules(subscription, renewal_time)
    notices = {
        notice.rule_id: notice
        for notice in RenewalNotice.objects.filter(
            subscription=subscription, renewal_at=renewal_time, rule_id__in=[r.id for r in rules]
        )
    }
    reasons = []
    for rule in rules:
        notice = notices.get(rule.id)
        if notice is None:
            reasons.append(f"notice {rule.id!r} was never planned")
        elif not notice.given_in_window():
            reasons.append(
                f"notice {rule.id!r} was not given between {notice.window_opens_at:%Y-%m-%d %H:%M}"
                f" and {notice.window_closes_at:%Y-%m-%d %H:%M} UTC (status {notice.status})"
            )
    return tuple(reasons)
