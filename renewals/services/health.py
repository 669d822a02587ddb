"""What needs a person: the report behind ``renewals_health`` and the admin's health page.

Every section is a query over the database, the source of truth, so the report is right
whether or not the queue and its workers are running. Times are computed in Python from the
``now`` given, never with the database's clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import F, Prefetch, Q, QuerySet
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from notifications.models import Delivery

from ..exceptions import PolicyError
from ..models import (
    LIVE_STATUSES,
    PENDING_NOTICE_STATUSES,
    NoticeStatus,
    RenewalNotice,
    Status,
    Subscription,
)
from .scheduling import required_rules

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

#: Defaults of the command and the admin page.
DEFAULT_DAYS = 7
DEFAULT_STUCK_MINUTES = 30
DEFAULT_LIMIT = 20

#: One row of a section: column -> an id, a UTC ISO time, a short text, a flag or ``None``.
Row = Mapping[str, str | int | bool | None]

#: The columns of the sections' rows, as people read them (the admin's table heads).
COLUMN_LABELS: Mapping[str, StrOrPromise] = {
    "subscription": _("subscription"),
    "notice": _("notice"),
    "delivery": _("delivery"),
    "rule": _("notice rule"),
    "policy": _("rule pack"),
    "status": _("status"),
    "problem": _("problem"),
    "reason": _("reason"),
    "error": _("error"),
    "renewal_at": _("renewal"),
    "next_renewal_at": _("next renewal"),
    "held_renewal_at": _("held renewal"),
    "missed_at": _("missed"),
    "queued_at": _("queued at"),
    "changed_at": _("changed at"),
    "channel": _("channel"),
    "backend": _("backend"),
    "recipient": _("recipient"),
    "reference": _("reference"),
    "attempts": _("attempts"),
    "gateway": _("billing gateway"),
    "gateway_subscription": _("gateway subscription id"),
    "auto_renew": _("auto-renewal on"),
}

#: Not given yet, but still able to be: a receipt may still come for a ``sent`` notice.
_AWAITING = PENDING_NOTICE_STATUSES | {NoticeStatus.SENT}


@dataclass(frozen=True)
class Section:
    """One kind of trouble: how many there are and the first rows."""

    key: str
    title: StrOrPromise
    #: Whether a non-zero count needs a person (else the section is for information).
    alert: bool
    count: int
    rows: tuple[Row, ...]

    @property
    def needs_attention(self) -> bool:
        return self.alert and self.count > 0

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.rows[0]) if self.rows else ()

    @property
    def headers(self) -> tuple[StrOrPromise, ...]:
        """The columns' labels (:data:`COLUMN_LABELS`)."""
        return tuple(COLUMN_LABELS[column] for column in self.columns)

    @property
    def more(self) -> int:
        """How many rows the section counts beyond those it lists."""
        return self.count - len(self.rows)


@dataclass(frozen=True)
class HealthReport:
    checked_at: dt.datetime
    days: int
    stuck_minutes: int
    sections: tuple[Section, ...]

    @property
    def needs_attention(self) -> bool:
        return any(section.needs_attention for section in self.sections)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, sections by key."""
        return {
            "checked_at": iso(self.checked_at),
            "days": self.days,
            "stuck_minutes": self.stuck_minutes,
            "needs_attention": self.needs_attention,
            "sections": {
                section.key: {
                    "title": str(section.title),
                    "alert": section.alert,
                    "count": section.count,
                    "rows": [dict(row) for row in section.rows],
                }
                for section in self.sections
            },
        }


def iso(instant: dt.datetime | None) -> str | None:
    """``instant`` in UTC, ISO 8601 to the second."""
    return None if instant is None else instant.astimezone(dt.UTC).isoformat(timespec="seconds")


def missed_notices_q() -> Q:
    """Missed notices of a renewal that is still ahead (or held) and may still be charged."""
    subscription_still_renews = Q(
        subscription__status__in=LIVE_STATUSES, subscription__auto_renew=True
    )
    renewal_still_open = Q(renewal_at=F("subscription__next_renewal_at")) | Q(
        renewal_at=F("subscription__held_renewal_at")
    )
    return Q(status=NoticeStatus.MISSED) & subscription_still_renews & renewal_still_open


def overdue_notices_q(now: dt.datetime, stuck: dt.timedelta) -> Q:
    """Notices still to go out whose send time passed more than ``stuck`` ago: the sweep is
    not running, or cannot keep up."""
    return Q(status__in=PENDING_NOTICE_STATUSES, send_at__lt=now - stuck)


def is_overdue(notice: RenewalNotice, now: dt.datetime, stuck: dt.timedelta) -> bool:
    """:func:`overdue_notices_q` for one notice in memory."""
    return notice.status in PENDING_NOTICE_STATUSES and notice.send_at < now - stuck


def notice_problem(
    notice: RenewalNotice | None, now: dt.datetime, stuck: dt.timedelta
) -> str | None:
    """Why a required notice is not in order, or ``None`` if it is given or on its way."""
    if notice is None:
        return "never planned"
    if notice.given_in_window():
        return None
    if notice.given_at is not None:
        return f"given outside its window, at {iso(notice.given_at)}"
    if is_overdue(notice, now, stuck):
        return f"overdue: due at {iso(notice.send_at)}"
    if notice.status in _AWAITING and now <= notice.window_closes_at:
        return None
    return f"not given ({notice.status})"


def health_report(
    now: dt.datetime,
    *,
    days: int = DEFAULT_DAYS,
    stuck_minutes: int = DEFAULT_STUCK_MINUTES,
    limit: int = DEFAULT_LIMIT,
) -> HealthReport:
    """Check renewals due within ``days`` of ``now``, missed notices, deliveries and gateway
    syncs stuck for more than ``stuck_minutes``, and held renewals; up to ``limit`` rows each."""
    stuck = dt.timedelta(minutes=stuck_minutes)
    since = now - stuck
    unannounced = list(_unannounced(now, now + dt.timedelta(days=days), stuck))
    sections = (
        Section(
            "unannounced",
            ngettext(
                "Required notices not given, for renewals due in the next %(days)d day",
                "Required notices not given, for renewals due in the next %(days)d days",
                days,
            )
            % {"days": days},
            alert=True,
            count=len(unannounced),
            rows=tuple(unannounced[:limit]),
        ),
        _section(
            "missed",
            _("Missed notices of renewals still to come"),
            RenewalNotice.objects.filter(missed_notices_q()).order_by("missed_at", "pk"),
            limit,
            notice="pk",
            subscription="subscription_id",
            rule="rule_id",
            renewal_at="renewal_at",
            missed_at="missed_at",
            reason="last_error",
        ),
        _section(
            "stuck_deliveries",
            ngettext(
                "Deliveries queued for more than %(minutes)d minute",
                "Deliveries queued for more than %(minutes)d minutes",
                stuck_minutes,
            )
            % {"minutes": stuck_minutes},
            Delivery.objects.filter(status=Delivery.Status.QUEUED, queued_at__lt=since).order_by(
                "queued_at", "pk"
            ),
            limit,
            delivery="pk",
            channel="channel",
            backend="backend_alias",
            recipient="recipient",
            reference="reference",
            queued_at="queued_at",
            attempts="attempts",
            error="error_code",
        ),
        _section(
            "gateway_sync_pending",
            ngettext(
                "Gateway syncs pending for more than %(minutes)d minute",
                "Gateway syncs pending for more than %(minutes)d minutes",
                stuck_minutes,
            )
            % {"minutes": stuck_minutes},
            Subscription.objects.filter(gateway_sync_pending=True, updated_at__lt=since).order_by(
                "updated_at", "pk"
            ),
            limit,
            subscription="pk",
            gateway="gateway",
            gateway_subscription="gateway_subscription_id",
            auto_renew="auto_renew",
            changed_at="updated_at",
        ),
        _section(
            "on_hold",
            _("Renewals held by the renewal gate"),
            Subscription.objects.filter(status=Status.ON_HOLD).order_by("next_renewal_at", "pk"),
            limit,
            alert=False,
            subscription="pk",
            policy="policy",
            next_renewal_at="next_renewal_at",
            held_renewal_at="held_renewal_at",
            changed_at="updated_at",
        ),
    )
    return HealthReport(now, days, stuck_minutes, sections)


def _unannounced(now: dt.datetime, horizon: dt.datetime, stuck: dt.timedelta) -> Iterator[Row]:
    """A row per required notice that is neither given nor on its way, for every renewal
    that may be charged by ``horizon`` (held and overdue renewals included)."""
    subscriptions = (
        Subscription.objects.filter(
            status__in=LIVE_STATUSES, auto_renew=True, next_renewal_at__lte=horizon
        )
        .select_related("terms", "upcoming_terms")
        .prefetch_related(
            Prefetch(
                "notices",
                queryset=RenewalNotice.objects.filter(
                    renewal_at=F("subscription__next_renewal_at")
                ),
                to_attr="current_notices",
            )
        )
        .order_by("next_renewal_at", "pk")
    )
    for subscription in subscriptions.iterator(chunk_size=500):
        renewal_at = subscription.next_renewal_at
        assert renewal_at is not None
        try:
            rules = required_rules(subscription, renewal_at)
        except PolicyError as exc:
            yield _unannounced_row(subscription, None, None, str(exc))
            continue
        notices = {notice.rule_id: notice for notice in subscription.current_notices}
        for rule in rules:
            notice = notices.get(rule.id)
            problem = notice_problem(notice, now, stuck)
            if problem is not None:
                yield _unannounced_row(subscription, rule.id, notice, problem)


def _unannounced_row(
    subscription: Subscription, rule: str | None, notice: RenewalNotice | None, problem: str
) -> Row:
    return {
        "subscription": subscription.pk,
        "renewal_at": iso(subscription.next_renewal_at),
        "rule": rule,
        "notice": notice.pk if notice else None,
        "status": notice.status if notice else None,
        "problem": problem,
    }


def _section(
    key: str,
    title: StrOrPromise,
    queryset: QuerySet[Any],
    limit: int,
    *,
    alert: bool = True,
    **columns: str,
) -> Section:
    """A section of ``queryset``'s rows; ``columns`` maps each column to its field."""
    values = queryset.values_list(*columns.values())[:limit]
    return Section(
        key,
        title,
        alert=alert,
        count=queryset.count(),
        rows=tuple(
            {column: _cell(value) for column, value in zip(columns, row, strict=True)}
            for row in values
        ),
    )


def _cell(value: Any) -> str | int | bool | None:
    return iso(value) if isinstance(value, dt.datetime) else value
