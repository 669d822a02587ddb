"""The renewals exception tree: catch :class:`RenewalsError` to catch them all."""

from __future__ import annotations


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


class IllegalTransition(RenewalsError):
    def __init__(self, current: str, target: str) -> None:
        self.current, self.target = str(current), str(target)
        super().__init__(f"A subscription cannot move from {self.current!r} to {self.target!r}.")


class GatewayError(RenewalsError):
    """The billing gateway refused or failed an operation."""


class AuditChainBroken(RenewalsError):
    def __init__(self, event_id: int, reason: str) -> None:
        super().__init__(f"Audit event {event_id} breaks the chain: {reason}.")
        self.event_id = event_id
        self.reason = reason
