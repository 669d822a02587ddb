"""Taking consent to auto-renewal, and starting a subscription with it."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from ..conf import renewals_settings
from ..exceptions import (
    AlreadySubscribed,
    CheckoutKeyReused,
    ConsentBundled,
    ConsentMissing,
    ConsentNotAffirmative,
    ConsentPreTicked,
    FirstRenewalTooSoon,
    IllegalTransition,
    NotAllowed,
    StaleTermsHash,
    TrialAlreadyUsed,
)
from ..gateways import get_gateway
from ..models import Consent, ConsentChannel, RenewalTerms, Status, Subscription
from ..models.subscription import LIVE_STATUSES, validate_time_zone
from ..periods import first_renewal
from ..policies import FreshConsent, ShortFirstTerm, get_pack, resolve_policy
from ..types import Actor, User
from .audit import record_event
from .confirmations import SUBSCRIBED, acknowledgment_required, enqueue_confirmation
from .scheduling import (
    earliest_noticeable_renewal,
    notices_too_late,
    plan_notices,
    renewal_context,
    rules_for,
)


@dataclass(frozen=True)
class ConsentEvidence:
    """What the consent form saw; :class:`renewals.forms.ConsentFormMixin` builds it."""

    affirmative: bool  # the control was ticked when the form was submitted
    control_initially_unticked: bool  # the control was rendered unticked
    terms_hash: str  # the hash of the terms the form showed
    channel: str  # a ConsentChannel value
    form_id: str  # which form or screen took the consent
    ip_address: str | None = None
    user_agent: str = ""
    locale: str = ""
    bundled_with: tuple[str, ...] = ()  # other agreements the same control also accepted
    disclosure_text: str = ""  # the disclosure shown beside the control, as plain text

    def __post_init__(self) -> None:
        for name in ("affirmative", "control_initially_unticked"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(
                    f"ConsentEvidence.{name} must be a bool, not {getattr(self, name)!r}."
                )
        if self.channel not in ConsentChannel.values:
            raise ValueError(
                f"ConsentEvidence.channel must be one of {ConsentChannel.values}, "
                f"not {self.channel!r}."
            )
        if not self.form_id:
            raise ValueError("ConsentEvidence.form_id must name the form or screen.")
        if self.ip_address is not None:
            # Stored as the database will hold it, so the evidence hash matches the row.
            try:
                address = ipaddress.ip_address(self.ip_address)
            except ValueError:
                raise ValueError(
                    f"ConsentEvidence.ip_address {self.ip_address!r} is not an IP address."
                ) from None
            normalized = clean_ipv6_address(str(address)) if address.version == 6 else str(address)
            object.__setattr__(self, "ip_address", normalized)


def validate_consent(evidence: ConsentEvidence | None, terms: RenewalTerms, policy: str) -> None:
    """Raise the :class:`~renewals.exceptions.ConsentError` that says why consent is refused."""
    if evidence is None:
        raise ConsentMissing()
    rules = get_pack(policy).consent
    if evidence.affirmative is not True:
        raise ConsentNotAffirmative()
    if rules.never_pre_ticked and not evidence.control_initially_unticked:
        raise ConsentPreTicked()
    if rules.not_bundled and evidence.bundled_with:
        raise ConsentBundled(", ".join(evidence.bundled_with))
    if evidence.terms_hash != terms.content_hash:
        raise StaleTermsHash(evidence.terms_hash, terms.content_hash)


def new_price_awaits_consent(
    subscription: Subscription, renewal_at: dt.datetime | None = None
) -> bool:
    """Whether the renewal at ``renewal_at`` (default: the next) charges a new price that the
    subscription's rule pack, in force on that day, requires fresh consent to
    (``price_change.fresh_consent``), and the user has not consented to the terms it charges
    (:meth:`~renewals.models.Subscription.renewal_terms`) yet: :func:`record_consent` takes
    that consent, and the renewal gate holds the renewal without it."""
    renewal_at = renewal_at or subscription.next_renewal_at
    if subscription.upcoming_terms_id is None or renewal_at is None:
        return False
    pack = get_pack(subscription.policy)
    if pack.price_change.fresh_consent is FreshConsent.NEVER or not pack.in_force_on(
        renewal_at.date()
    ):
        return False
    if not pack.price_change.requires_consent(renewal_context(subscription, renewal_at)):
        return False
    return not Consent.objects.filter(
        subscription=subscription,
        revoked_at__isnull=True,
        terms_hash=subscription.renewal_terms().content_hash,
    ).exists()


def ensure_may_act(subscription: Subscription, actor: Actor) -> None:
    """Raise :class:`~renewals.exceptions.NotAllowed` if ``actor`` is a user who may not act
    for ``subscription``: anyone but its own user or staff (``is_staff``, acting on the
    user's behalf). ``None`` (the system) and labels such as ``"support:ticket-42"`` name no
    user and pass; the caller vouches for them."""
    if actor is None or isinstance(actor, str):
        return
    if actor.pk != subscription.user_id and not getattr(actor, "is_staff", False):
        raise NotAllowed(actor, subscription)


def record_consent(
    subscription: Subscription, evidence: ConsentEvidence | None, *, actor: Actor = None
) -> Consent:
    """Store consent to the terms the subscription's next renewal is charged at
    (:meth:`~renewals.models.Subscription.renewal_terms`: its upcoming terms when a new price
    is pending), after checking it is valid and that ``actor`` may act for the subscription
    (:func:`ensure_may_act`).

    The audit chain records the consent's id, terms hash, channel and form, the sha256 of
    its evidence, and binds the consent and terms rows (:mod:`.row_binding`); the personal
    data (IP address, user agent) stays in the consent row only, the chain holding a digest,
    so it can be erased on request while the chain still proves what was there.
    """
    ensure_may_act(subscription, actor)
    if not subscription.is_live:
        raise IllegalTransition(subscription.status, "consented")
    validate_consent(evidence, subscription.renewal_terms(), subscription.policy)
    assert evidence is not None
    return _record(subscription, evidence, actor)


def _record(subscription: Subscription, evidence: ConsentEvidence, actor: Actor) -> Consent:
    """Store evidence already validated for this subscription, and its audit event."""
    with transaction.atomic():
        consent = _store(subscription, evidence)
        record_event(
            "consent_granted",
            subscription=subscription,
            actor=actor if actor is not None else subscription.user,
            data={
                "consent": consent.pk,
                "terms_hash": consent.terms_hash,
                "channel": consent.channel,
                "form_id": consent.form_id,
                "evidence_sha256": consent.evidence_hash(),
            },
            at=consent.granted_at,
            evidence=[consent, consent.terms],
        )
    return consent


def _store(subscription: Subscription, evidence: ConsentEvidence) -> Consent:
    return Consent.objects.create(
        subscription=subscription,
        user=subscription.user,
        terms=subscription.renewal_terms(),
        terms_hash=evidence.terms_hash,
        policy=subscription.policy,
        granted_at=timezone.now(),
        channel=evidence.channel,
        ip_address=evidence.ip_address,
        user_agent=evidence.user_agent,
        locale=evidence.locale,
        form_id=evidence.form_id,
        control_initially_unticked=evidence.control_initially_unticked,
        disclosure_text=evidence.disclosure_text,
    )


def subscribe(
    user: User,
    terms: RenewalTerms,
    evidence: ConsentEvidence | None,
    *,
    time_zone: str | None = None,
    policy: str | None = None,
    start: dt.datetime | None = None,
    request_key: str | None = None,
    trial: bool = True,
) -> Subscription:
    """Start an auto-renewing subscription on ``terms`` with the user's consent.

    Nothing is written unless the consent and the IANA ``time_zone`` are valid. The first
    renewal is at the end of the trial, or one term after ``start`` (default: now); its
    notices are planned at once. If a notice the rule pack requires before it could no longer
    go out in its window with ``RENEWALS["RETRY_MARGIN_HOURS"]`` to spare, the pack's
    ``short_first_term`` decides: ``refuse`` raises
    :class:`~renewals.exceptions.FirstRenewalTooSoon` (nothing is written), ``defer`` moves
    the first renewal, and the trial's end, to the earliest time the notices can precede.
    Once the subscription is committed, a rule pack that requires it
    (``consent.acknowledgment_required``) has the user sent an acknowledgment of the terms,
    the cancellation policy and how to cancel (:mod:`~renewals.services.confirmations`).

    A user holds one live subscription per service (``terms.service_name``): another raises
    :class:`~renewals.exceptions.AlreadySubscribed`, which carries the existing one. The
    terms' free trial is given once per user and service unless ``terms.trial_once_per_user``
    is false: pass ``trial=False`` when the disclosure shown offered none
    (:func:`trial_available` tells), else a user who already had it gets
    :class:`~renewals.exceptions.TrialAlreadyUsed`. Both rules hold under concurrent
    checkouts: they are checked under a row lock on the user.

    ``request_key`` names the checkout (``ConsentFormMixin`` renders one per form): submitting
    the same checkout twice, even concurrently, returns the first subscription and records
    nothing more; the same key from another user or for other terms raises
    :class:`~renewals.exceptions.CheckoutKeyReused`.
    """
    if request_key:
        existing = _started_by(request_key, user, terms)
        if existing is not None:
            return existing

    policy = policy or resolve_policy(user, terms)
    validate_consent(evidence, terms, policy)
    assert evidence is not None
    if start is not None and timezone.is_naive(start):
        raise ValueError("subscribe(start=...) must be an aware datetime.")
    # Whole seconds, as processors such as Stripe report period and renewal times.
    start = (start or timezone.now()).replace(microsecond=0)
    time_zone = time_zone or renewals_settings.time_zone_name
    validate_time_zone(time_zone)
    trial = trial and terms.trial_days > 0
    zone = ZoneInfo(time_zone)
    offered = first_renewal(terms, start, zone, trial=trial)
    renewal = _noticeable_first_renewal(terms, policy, offered, zone, trial=trial)
    try:
        return _start(
            user,
            terms,
            evidence,
            policy,
            time_zone,
            start,
            renewal,
            request_key,
            trial=trial,
            deferred_from=offered if renewal != offered else None,
        )
    except IntegrityError:
        existing = _started_by(request_key, user, terms) if request_key else None
        if existing is None:
            raise
        return existing


def _noticeable_first_renewal(
    terms: RenewalTerms, policy: str, renewal: dt.datetime, zone: ZoneInfo, *, trial: bool
) -> dt.datetime:
    """``renewal``, if every notice the pack requires before it can still go out in time
    (:func:`~renewals.services.scheduling.notices_too_late`); else, as the pack's
    ``short_first_term`` says, raise :class:`~renewals.exceptions.FirstRenewalTooSoon` or
    return the earliest renewal they can all precede."""
    rules = rules_for(
        policy,
        renewal,
        terms=terms,
        renewal_terms=terms,
        trial_ends_at=renewal if trial else None,
        zone=zone,
    )
    now = timezone.now()
    late = notices_too_late(rules, renewal, zone, now=now)
    if not late:
        return renewal
    if get_pack(policy).short_first_term is ShortFirstTerm.REFUSE:
        raise FirstRenewalTooSoon(policy, late[0].id, renewal, late[0].window(renewal, zone)[1])
    return earliest_noticeable_renewal(rules, zone, now=now)


def trial_available(user: User, terms: RenewalTerms) -> bool:
    """Whether a subscription of ``user`` to ``terms`` would start with the terms' free
    trial: they have one, and the user had none of this service before (or the terms give
    it every time). Build the consent form with ``trial=trial_available(user, terms)``."""
    if not terms.trial_days:
        return False
    if not terms.trial_once_per_user:
        return True
    return not Subscription.objects.filter(
        user=user, terms__service_name=terms.service_name, trial_ends_at__isnull=False
    ).exists()


def _started_by(request_key: str, user: User, terms: RenewalTerms) -> Subscription | None:
    existing = Subscription.objects.filter(request_key=request_key).first()
    if existing is not None and existing.user_id != user.pk:
        raise CheckoutKeyReused("belongs to another user's subscription")
    if existing is not None and existing.terms_id != terms.pk:
        raise CheckoutKeyReused("started a subscription to other terms")
    return existing


def _lock_user(user: User) -> None:
    """Take the user's row lock until the transaction ends: one checkout at a time per user
    (on SQLite, which serializes writers anyway, a no-op)."""
    get_user_model()._base_manager.select_for_update().only("pk").get(pk=user.pk)


def _start(
    user: User,
    terms: RenewalTerms,
    evidence: ConsentEvidence,
    policy: str,
    time_zone: str,
    start: dt.datetime,
    renewal: dt.datetime,
    request_key: str | None,
    *,
    trial: bool,
    deferred_from: dt.datetime | None,
) -> Subscription:
    with transaction.atomic():
        _lock_user(user)
        # Read under the lock: a concurrent checkout of this user has committed or not begun.
        started = _started_by(request_key, user, terms) if request_key else None
        if started is not None:
            return started
        live = Subscription.objects.filter(
            user=user, terms__service_name=terms.service_name, status__in=LIVE_STATUSES
        ).first()
        if live is not None:
            raise AlreadySubscribed(live)
        if trial and not trial_available(user, terms):
            raise TrialAlreadyUsed(terms.service_name)
        subscription = Subscription.objects.create(
            request_key=request_key or None,
            user=user,
            terms=terms,
            policy=policy,
            status=Status.TRIALING if trial else Status.ACTIVE,
            time_zone=time_zone,
            auto_renew=True,
            gateway=get_gateway().name,
            current_period_start=start,
            trial_ends_at=renewal if trial else None,
            next_renewal_at=renewal,
        )
        subscribed = record_event(
            SUBSCRIBED,
            subscription=subscription,
            actor=user,
            data={
                "terms": terms.pk,
                "terms_hash": terms.content_hash,
                "policy": policy,
                "status": subscription.status,
                "next_renewal_at": subscription.next_renewal_at,
                "time_zone": subscription.time_zone,
                "gateway": subscription.gateway,
                **({"first_renewal_deferred_from": deferred_from} if deferred_from else {}),
            },
        )
        _record(subscription, evidence, actor=user)  # validated above
        plan_notices(subscription)
        if acknowledgment_required(policy, subscribed.occurred_at, subscription.zone):
            enqueue_confirmation(subscribed)
    return subscription
