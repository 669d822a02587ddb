"""The renewals exception tree: catch :class:`RenewalsError` to catch them all."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied, SuspiciousOperation

if TYPE_CHECKING:
    from .models import StripeEvent, Subscription
    from .types import User


class RenewalsError(Exception):
    """Base class of every error this package raises on purpose."""


class PolicyError(RenewalsError):
    """A rule pack is unknown or invalid."""


class UnknownPolicy(PolicyError, LookupError):
    def __init__(self, code: str, known: list[str]) -> None:
        super().__init__(f"Unknown rule pack {code!r}; known packs: {', '.join(sorted(known))}.")
        self.code = code


class ConsentError(RenewalsError):
    """Consent that the rules do not accept; the subclass says why."""


class ConsentNotAffirmative(ConsentError):
    def __init__(self) -> None:
        super().__init__("Consent must be an affirmative act: the control was not ticked.")


class ConsentPreTicked(ConsentError):
    def __init__(self) -> None:
        super().__init__("Consent from a control that started ticked is not consent.")


class ConsentBundled(ConsentError):
    def __init__(self, bundled_with: str) -> None:
        super().__init__(
            f"Consent to auto-renewal must be separate; it was bundled with {bundled_with!r}."
        )
        self.bundled_with = bundled_with


class StaleTermsHash(ConsentError):
    def __init__(self, given: str, current: str) -> None:
        super().__init__(
            f"Consent names terms {given[:12]}…, but the terms shown are {current[:12]}…; "
            "show the current terms and ask again."
        )
        self.given = given
        self.current = current


class ConsentMissing(ConsentError):
    def __init__(self, what: str = "auto-renewal") -> None:
        super().__init__(f"No valid consent to {what} is on record.")


class TrialAlreadyUsed(ConsentError):
    def __init__(self, service_name: str) -> None:
        super().__init__(
            f"The user already had the free trial of {service_name!r}; show the terms without "
            "it (ConsentFormMixin(trial=False)) and ask again."
        )
        self.service_name = service_name


class FirstRenewalTooSoon(RenewalsError):
    """The first renewal of a new subscription comes too soon for a notice its rule pack
    requires before it, and the pack refuses such terms (``short_first_term = "refuse"``)."""

    def __init__(
        self, policy: str, rule_id: str, renewal_at: dt.datetime, notice_by: dt.datetime
    ) -> None:
        super().__init__(
            f"Under rule pack {policy!r} the first renewal, at {renewal_at:%Y-%m-%d %H:%M} UTC, "
            f"needs notice {rule_id!r} by {notice_by:%Y-%m-%d %H:%M} UTC, which leaves less "
            "than RENEWALS['RETRY_MARGIN_HOURS'] to send it: offer these terms with a longer "
            "free trial or first term."
        )
        self.policy = policy
        self.rule_id = rule_id
        self.renewal_at = renewal_at
        self.notice_by = notice_by


class AlreadySubscribed(RenewalsError):
    """The user already holds a live subscription to the service: ``existing``."""

    def __init__(self, existing: Subscription) -> None:
        super().__init__(
            f"The user already holds live subscription #{existing.pk} to "
            f"{existing.terms.service_name!r}."
        )
        self.existing = existing


class CheckoutKeyReused(RenewalsError):
    """A checkout's ``request_key`` came back from another user, or for other terms."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"This checkout key {reason}.")
        self.reason = reason


class NotAllowed(RenewalsError, PermissionDenied):
    """The actor may not act for this subscription (Django answers 403 if uncaught)."""

    def __init__(self, actor: User, subscription: Subscription) -> None:
        super().__init__(
            f"User #{actor.pk} may not act for subscription #{subscription.pk}, "
            "which belongs to another user."
        )


class IllegalTransition(RenewalsError):
    def __init__(self, current: str, target: str) -> None:
        self.current, self.target = str(current), str(target)
        super().__init__(f"A subscription cannot move from {self.current!r} to {self.target!r}.")


class GatewayError(RenewalsError):
    """The billing gateway refused or failed an operation."""


class GatewayUnavailable(GatewayError):
    """The processor could not be reached or asked to be tried later (rate limit, outage):
    the same call, repeated later, may succeed."""


class GatewayRefused(GatewayError):
    """The processor refused the call (an invalid request, a declined card): repeating it
    changes nothing. The message is the processor's; ``code`` its error code, if any."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class PriceMismatch(RenewalsError):
    """The processor's price charges other than the terms the user consented to."""

    def __init__(self, price_id: str, differences: list[str]) -> None:
        super().__init__(f"Price {price_id} differs from the terms: {'; '.join(differences)}.")
        self.price_id = price_id
        self.differences = differences


class WebhookRejected(RenewalsError, SuspiciousOperation):
    """A webhook request that is not verifiably the processor's: a missing, forged or stale
    signature, or a body that is not an event. It is answered 400 and nothing is stored."""


class WebhookEventFailed(RenewalsError):
    """Applying a stored webhook event failed. The event is kept with its error; the
    processor's retry or ``renewals_stripe_reprocess`` applies it later."""

    def __init__(self, event: StripeEvent) -> None:
        super().__init__(f"Stripe event {event.event_id} ({event.type}) failed: {event.error}")
        self.event = event


class AuditChainBroken(RenewalsError):
    def __init__(self, event_id: int, reason: str) -> None:
        super().__init__(f"Audit event {event_id} breaks the chain: {reason}.")
        self.event_id = event_id
        self.reason = reason


class LinkError(RenewalsError):
    """A one-click link that cannot be used; the subclass says why.

    Not a ``SuspiciousOperation``: a link cut short by a phone is common and honest, so the
    view answers it with a page that leads on, not with a security log entry.
    """


class LinkTampered(LinkError):
    def __init__(self) -> None:
        super().__init__("The link was changed, or names no reminder it was made for.")


class LinkExpired(LinkError):
    def __init__(self, expired_at: dt.datetime) -> None:
        super().__init__(f"The link expired at {expired_at.isoformat()}.")
        self.expired_at = expired_at


class WithdrawalRefused(RenewalsError):
    """A withdrawal the rules do not allow; the subclass says why."""


class NoWithdrawalRight(WithdrawalRefused):
    def __init__(self, policy: str) -> None:
        super().__init__(f"Rule pack {policy!r} gives no right of withdrawal.")
        self.policy = policy


class WithdrawalPeriodOver(WithdrawalRefused):
    def __init__(self, deadline: dt.datetime) -> None:
        super().__init__(f"The withdrawal period ended at {deadline.isoformat()}.")
        self.deadline = deadline
