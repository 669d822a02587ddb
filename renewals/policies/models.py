"""The shape of a rule pack: what a jurisdiction requires of an auto-renewal.

Packs are frozen pydantic models, loaded from the TOML files in ``packs/`` and from
``RENEWALS["POLICIES"]``. Nothing here touches the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from operator import eq, ge, le
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PackStatus(StrEnum):
    IN_FORCE = "in_force"
    NOT_IN_FORCE = "not_in_force"  # enacted or proposed, with no date of application yet
    INACTIVE = "inactive"  # vacated or repealed: kept as a reference only


class Channel(StrEnum):
    SMS = "sms"
    PUSH = "push"
    EMAIL = "email"


class GateRemedy(StrEnum):
    DEFER = "defer"  # hold the charge, send the notice, renew once its window has passed
    LAPSE = "lapse"  # do not renew: the subscription ends at the period end


class FreshConsent(StrEnum):
    """Which price changes need the user's consent to the new terms before they are charged."""

    NEVER = "never"  # a notice (where a rule asks for one) is enough
    ON_INCREASE = "on_increase"  # a higher price, or another currency
    ON_ANY_CHANGE = "on_any_change"


class ShortFirstTerm(StrEnum):
    """What ``subscribe`` does when a notice of the first renewal can no longer be given."""

    REFUSE = "refuse"  # raise FirstRenewalTooSoon: the terms cannot be offered as they are
    DEFER = "defer"  # move the first renewal (and the trial's end) to when it can be given


#: How the days of a notice window are counted: ``elapsed`` 24-hour days back from the
#: renewal instant; ``calendar`` days of the user's local calendar, excluding the day the
#: notice is given and including the renewal's day (Cal. Civ. Code § 10).
DayCount = Literal["elapsed", "calendar"]


class CancellationFlow(StrEnum):
    ONE_CLICK = "one_click"  # a single action ends auto-renewal
    TWO_STEP_BUTTON = "two_step_button"  # a labelled button, a confirmation page, a final button
    WITHDRAWAL = "withdrawal"  # a withdrawal function, then a confirmation


#: Fields a renewal notice message may be required to carry: ``amount`` and ``currency`` are
#: what the renewal charges; ``previous_amount`` and ``previous_currency`` the price until
#: then; ``consent_url`` where the user agrees to the new terms.
MessageField = Literal[
    "service_name",
    "amount",
    "currency",
    "renewal_date",
    "how_to_cancel",
    "cancel_url",
    "previous_amount",
    "previous_currency",
    "consent_url",
]
#: The message template of the renewal reminder (``renewals.notice_messages.REMINDER``).
REMINDER_TEMPLATE = "renewals.reminder"

#: Fields the disclosure beside a consent control may be required to show.
DisclosureField = Literal[
    "service_name",
    "amount",
    "currency",
    "interval",
    "first_renewal_date",
    "trial",
    "how_to_cancel",
    "renewal_wording",
]


class LegalSource(Frozen):
    citation: str
    url: str | None = None
    effective_from: dt.date | None = None
    note: str = ""


class ConsentRules(Frozen):
    separate_control: bool = True
    never_pre_ticked: bool = True
    not_bundled: bool = True
    pre_service_disclosure: bool = True
    disclosure_fields: tuple[DisclosureField, ...] = ()
    acknowledgment_required: bool = False


@dataclass(frozen=True)
class RenewalContext:
    """What a notice rule needs to know about one upcoming renewal."""

    term_days: int  # length of the term that this renewal starts, in calendar days
    ends_trial: bool  # the renewal is the first charge after a free trial or promotion
    trial_days: int  # length of that trial (0 when there is none)
    price_change: bool  # the renewal is charged at another amount or currency than the last
    price_increase: bool  # ... at a higher amount, or in another currency


#: How a bound of :class:`Applicability` may change without covering fewer renewals;
#: any other field must stay as it is.
_LOOSER: dict[str, Callable[[Any, Any], bool]] = {
    "min_term_days": le,
    "max_term_days": ge,
    "trial_longer_than_days": le,
}


class Applicability(Frozen):
    """Which renewals a notice rule covers; every field left as ``None`` matches all."""

    min_term_days: int | None = Field(default=None, ge=1)
    max_term_days: int | None = Field(default=None, ge=1)
    ends_trial: bool | None = None
    trial_longer_than_days: int | None = Field(default=None, ge=0)
    price_change: bool | None = None
    price_increase: bool | None = None

    def matches(self, ctx: RenewalContext) -> bool:
        if self.min_term_days is not None and ctx.term_days < self.min_term_days:
            return False
        if self.max_term_days is not None and ctx.term_days > self.max_term_days:
            return False
        if self.ends_trial is not None and ctx.ends_trial != self.ends_trial:
            return False
        if (
            self.trial_longer_than_days is not None
            and ctx.trial_days <= self.trial_longer_than_days
        ):
            return False
        if self.price_change is not None and ctx.price_change != self.price_change:
            return False
        return self.price_increase is None or ctx.price_increase == self.price_increase

    def narrowed_from(self, other: Applicability) -> tuple[str, ...]:
        """The fields of ``self`` that may exclude a renewal that ``other`` covers.

        Judged field by field, so conservatively: a field may only be left out, kept or
        loosened (a lower bound lowered, an upper bound raised); any other change narrows.
        """
        narrowed = []
        for name in type(self).model_fields:
            new, old = getattr(self, name), getattr(other, name)
            looser: Callable[[Any, Any], bool] = _LOOSER.get(name, eq)
            if new is not None and (old is None or not looser(new, old)):
                narrowed.append(name)
        return tuple(narrowed)


class NoticeRule(Frozen):
    """One notice the law requires before a renewal, and the window it must go out in."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=64)
    title: str
    source: str = Field(description="The citation, from the pack's sources, this rule rests on.")
    applies_to: Applicability = Applicability()
    earliest_days_before: int = Field(ge=0, description="The window opens this long before.")
    earliest_is_legal_limit: bool = Field(
        default=False, description="The law forbids sending earlier than earliest_days_before."
    )
    latest_days_before: int = Field(ge=0, description="The window closes this long before.")
    channels: tuple[Channel, ...] = Field(min_length=1)
    strategy: Literal["all", "first_success"] = "all"
    fallback_channels: tuple[Channel, ...] = Field(
        default=(),
        description="Tried when the window nears its close and the notice is not yet given; "
        "evidence on one of them gives the notice.",
    )
    delivered_when: Literal["accepted", "delivered"] = "accepted"
    required_fields: tuple[MessageField, ...] = ()
    message: str = Field(
        default=REMINDER_TEMPLATE,
        min_length=1,
        max_length=64,
        description="The key of the message template the notice is sent with.",
    )
    day_count: DayCount = Field(
        default="elapsed",
        description="How the days of the window are counted: 'elapsed' 24-hour days, or "
        "'calendar' days of the user's local calendar.",
    )

    @model_validator(mode="after")
    def _window_is_ordered(self) -> NoticeRule:
        if self.latest_days_before > self.earliest_days_before:
            raise ValueError(
                f"latest_days_before ({self.latest_days_before}) must not exceed "
                f"earliest_days_before ({self.earliest_days_before})"
            )
        return self

    def window(
        self, renewal_at: dt.datetime, zone: dt.tzinfo | None = None
    ) -> tuple[dt.datetime, dt.datetime]:
        """The (opens, closes) instants, both inclusive, of this rule's window for a renewal.

        ``elapsed`` days are exact 24-hour days back from the renewal instant, also across a
        daylight-saving change. ``calendar`` days are counted on the local calendar of
        ``zone`` (the user's; default: ``renewal_at``'s own zone) as Cal. Civ. Code § 10
        counts them, excluding the day the notice is given and including the renewal's day:
        "at least 15 and not more than 45 days before" a renewal on the 20th is any time from
        the start of the 45th day before to the end of the 15th day before (and never after
        the renewal instant). The instants are returned in ``renewal_at``'s time zone.
        """
        own_zone = renewal_at.tzinfo
        if own_zone is None or renewal_at.utcoffset() is None:
            raise ValueError("renewal_at must be an aware datetime")
        if self.day_count == "calendar":
            zone = zone or own_zone
            day = renewal_at.astimezone(zone).date()
            opens = start_of_day(day - dt.timedelta(days=self.earliest_days_before), zone)
            next_day = start_of_day(day - dt.timedelta(days=self.latest_days_before - 1), zone)
            closes = min(next_day - dt.timedelta(microseconds=1), renewal_at)
            return opens.astimezone(own_zone), closes.astimezone(own_zone)
        if own_zone is dt.UTC:  # as the database gives it: nothing to convert
            return (
                renewal_at - dt.timedelta(days=self.earliest_days_before),
                renewal_at - dt.timedelta(days=self.latest_days_before),
            )
        at = renewal_at.astimezone(dt.UTC)
        return (
            (at - dt.timedelta(days=self.earliest_days_before)).astimezone(own_zone),
            (at - dt.timedelta(days=self.latest_days_before)).astimezone(own_zone),
        )

    def earliest_renewal(self, after: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
        """A renewal soon after ``after`` whose window under this rule is still open then:
        ``latest_days_before`` 24-hour days later (so at the same time of day, mostly), and,
        counting ``calendar`` days in ``zone``, no earlier than the start of the local day
        that many days after ``after``'s, which those hours miss across a change of the
        clocks."""
        elapsed = after.astimezone(dt.UTC) + dt.timedelta(days=self.latest_days_before)
        if self.day_count == "elapsed" or self.latest_days_before == 0:
            return elapsed
        day = after.astimezone(zone).date() + dt.timedelta(days=self.latest_days_before)
        return max(elapsed, start_of_day(day, zone))


def start_of_day(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    """The first instant of ``day`` in ``zone``, in UTC: its midnight, or, where the clocks
    skip midnight, the moment they skip to."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)


class CancellationRules(Frozen):
    flow: CancellationFlow = CancellationFlow.ONE_CLICK
    online_if_signed_up_online: bool = True
    login_required: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    confirmation_required: bool = True
    withdrawal_days: int | None = Field(default=None, ge=1)


class RetentionRules(Frozen):
    """How long consent and notice evidence must be kept: the longer of the two periods."""

    min_years: int = Field(default=3, ge=0)
    years_after_contract_end: int = Field(default=0, ge=0)


class PriceChangeRules(Frozen):
    """What a renewal charged at a new price needs besides the notice rules that cover it
    (``applies_to.price_change`` or ``price_increase``)."""

    fresh_consent: FreshConsent = Field(
        default=FreshConsent.NEVER,
        description="Which price changes need the user's consent to the new terms first.",
    )
    without_consent: GateRemedy = Field(
        default=GateRemedy.LAPSE,
        description="The gate's remedy when that consent is missing at the renewal: 'lapse' "
        "ends the subscription at the period end, 'defer' holds the renewal and asks again.",
    )
    source: str | None = Field(
        default=None, description="The citation, from the pack's sources, this rests on."
    )

    def requires_consent(self, ctx: RenewalContext) -> bool:
        """Does the renewal described by ``ctx`` need consent to the terms it charges?"""
        if self.fresh_consent is FreshConsent.ON_ANY_CHANGE:
            return ctx.price_change
        return self.fresh_consent is FreshConsent.ON_INCREASE and ctx.price_increase


class RulePack(Frozen):
    code: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=32)
    title: str
    jurisdiction: str
    status: PackStatus
    effective_from: dt.date | None = None
    effective_until: dt.date | None = None
    sources: tuple[LegalSource, ...] = Field(min_length=1)
    consent: ConsentRules = ConsentRules()
    notices: tuple[NoticeRule, ...] = ()
    channels: tuple[Channel, ...] = Field(
        default=(Channel.SMS, Channel.PUSH),
        min_length=1,
        description="The channels the law accepts for this pack's notices and confirmations: "
        "a notice rule's channels are among them, and a pack without notice rules sends its "
        "confirmations on them.",
    )
    cancellation: CancellationRules = CancellationRules()
    retention: RetentionRules = RetentionRules()
    gate_remedy: GateRemedy = GateRemedy.DEFER
    price_change: PriceChangeRules = PriceChangeRules()
    short_first_term: ShortFirstTerm = Field(
        default=ShortFirstTerm.REFUSE,
        description="What subscribe does when a notice of the first renewal can no longer be "
        "given in its window.",
    )
    notes: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> RulePack:
        ids = [rule.id for rule in self.notices]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"notice rule ids must be unique, repeated: {duplicated}")
        citations = {source.citation for source in self.sources}
        for rule in self.notices:
            if rule.source not in citations:
                raise ValueError(
                    f"notice rule {rule.id!r} cites {rule.source!r}, which is not in sources"
                )
            outside = [
                c for c in (*rule.channels, *rule.fallback_channels) if c not in self.channels
            ]
            if outside:
                raise ValueError(
                    f"notice rule {rule.id!r} gives its notice by {', '.join(outside)}, which "
                    f"the pack does not accept (channels: {', '.join(self.channels)})"
                )
        price_change = self.price_change
        if price_change.fresh_consent is not FreshConsent.NEVER and price_change.source is None:
            raise ValueError("price_change.fresh_consent needs the price_change.source it rests on")
        if price_change.source is not None and price_change.source not in citations:
            raise ValueError(f"price_change cites {price_change.source!r}, which is not in sources")
        if (
            self.effective_until
            and self.effective_from
            and self.effective_until < self.effective_from
        ):
            raise ValueError("effective_until must not be before effective_from")
        return self

    @cached_property
    def notices_have_conditions(self) -> bool:
        """Whether any notice rule limits the renewals it covers; when none does, every
        renewal gets every rule, and no renewal's context needs working out."""
        return any(rule.applies_to.model_fields_set for rule in self.notices)

    def notices_for(self, ctx: RenewalContext) -> tuple[NoticeRule, ...]:
        """The notice rules that cover a renewal described by ``ctx``."""
        return tuple(rule for rule in self.notices if rule.applies_to.matches(ctx))

    def in_force_on(self, day: dt.date) -> bool:
        if self.status is not PackStatus.IN_FORCE:
            return False
        if self.effective_from and day < self.effective_from:
            return False
        return not (self.effective_until and day > self.effective_until)
