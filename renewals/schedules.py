"""The django-q2 schedules the package needs, and the one function that writes them.

``manage.py renewals_schedules`` calls :func:`upsert_schedules` on every deploy. Rows are
found by name; each runs every few minutes (``Schedule.MINUTES``, forever). Every task is
a sweep over the database, so a run that is late or lost is made good by the next one, and
none needs to be caught up: set ``Q_CLUSTER["catch_up"] = False`` so a cluster that was down
for an hour runs each schedule once, not once per missed interval. A schedule that has to
be changed is also moved to its next run in the future.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django_q.models import Schedule

from notifications.app_settings import integer, item

from .conf import renewals_settings


@dataclass(frozen=True)
class ScheduleSpec:
    """A periodic task: the schedule's ``name``, the dotted ``func``, every ``minutes``."""

    name: str
    func: str
    minutes: int


SCHEDULES: tuple[ScheduleSpec, ...] = (
    ScheduleSpec("renewals.send_due_notices", "renewals.tasks.send_due_notices", 1),
    ScheduleSpec("renewals.run_due_renewals", "renewals.tasks.run_due_renewals", 5),
    ScheduleSpec("notifications.sweep_deliveries", "notifications.tasks.sweep_deliveries", 10),
    ScheduleSpec("renewals.create_checkpoint", "renewals.tasks.create_checkpoint", 60),
    ScheduleSpec("renewals.sync_pending_gateways", "renewals.tasks.sync_pending_gateways", 15),
    ScheduleSpec(
        "renewals.send_pending_confirmations", "renewals.tasks.send_pending_confirmations", 10
    ),
    ScheduleSpec(
        "renewals.apply_scheduled_cancellations",
        "renewals.tasks.apply_scheduled_cancellations",
        60,
    ),
)

#: ``Schedule.minutes`` is a PositiveSmallIntegerField.
_MAX_MINUTES = 32767

Action = Literal["created", "updated", "removed", "unchanged"]


@dataclass(frozen=True)
class ScheduleChange:
    """What :func:`upsert_schedules` did (or would do) to one schedule, and the details."""

    name: str
    action: Action
    details: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.action != "unchanged"


def intervals() -> dict[str, int | None]:
    """Each schedule's minutes, after ``RENEWALS["SCHEDULES"]`` (``None``: left out)."""
    setting = "RENEWALS['SCHEDULES']"
    minutes: dict[str, int | None] = {spec.name: spec.minutes for spec in SCHEDULES}
    for name, value in renewals_settings.SCHEDULES.items():
        if name not in minutes:
            raise ImproperlyConfigured(
                f"{setting} names no schedule {name!r}; known: {', '.join(minutes)}."
            )
        minutes[name] = None if value is None else _minutes(item(setting, name), value)
    return minutes


def _minutes(name: str, value: object) -> int:
    minutes = integer(name, value, minimum=1)
    if minutes > _MAX_MINUTES:
        raise ImproperlyConfigured(f"{name} must be at most {_MAX_MINUTES}, got {minutes}.")
    return minutes


def upsert_schedules(now: dt.datetime, *, dry_run: bool = False) -> list[ScheduleChange]:
    """Make the ``Schedule`` rows match :data:`SCHEDULES`; return what changed, in order.

    Idempotent: a second run changes nothing. Only the fields the package sets are compared
    (``func``, ``args``, ``kwargs``, ``schedule_type``, ``minutes``, ``repeats``); a ``hook``
    or ``cluster`` set by hand is kept. Extra rows of the same name are deleted, so a task
    never runs twice per interval. With ``dry_run`` nothing is written.
    """
    every = intervals()
    with transaction.atomic():
        changes = [_upsert(spec, every[spec.name], now) for spec in SCHEDULES]
        if dry_run:
            transaction.set_rollback(True)
    return changes


def _upsert(spec: ScheduleSpec, minutes: int | None, now: dt.datetime) -> ScheduleChange:
    rows = list(Schedule.objects.select_for_update().filter(name=spec.name).order_by("pk"))
    if minutes is None:
        if not rows:
            return ScheduleChange(spec.name, "unchanged", ("left out by RENEWALS['SCHEDULES']",))
        Schedule.objects.filter(pk__in=[row.pk for row in rows]).delete()
        return ScheduleChange(spec.name, "removed", ("left out by RENEWALS['SCHEDULES']",))
    wanted = {
        "func": spec.func,
        "args": None,
        "kwargs": None,
        "schedule_type": Schedule.MINUTES,
        "minutes": minutes,
        "repeats": -1,
    }
    if not rows:
        Schedule.objects.create(name=spec.name, next_run=now, **wanted)
        return ScheduleChange(spec.name, "created", (f"{spec.func} every {minutes} min",))
    row, *duplicates = rows
    details = [
        f"{field}: {getattr(row, field)!r} -> {value!r}"
        for field, value in wanted.items()
        if getattr(row, field) != value
    ]
    if duplicates:
        Schedule.objects.filter(pk__in=[dup.pk for dup in duplicates]).delete()
        details.append(f"deleted {len(duplicates)} duplicate(s)")
    if not details:
        return ScheduleChange(spec.name, "unchanged")
    for field, value in wanted.items():
        setattr(row, field, value)
    row.next_run = next_future_run(row.next_run, dt.timedelta(minutes=minutes), now)
    row.save()
    return ScheduleChange(spec.name, "updated", tuple(details))


def next_future_run(
    current: dt.datetime | None, every: dt.timedelta, now: dt.datetime
) -> dt.datetime:
    """The next run after ``now`` at the phase of ``current`` (``now`` if there is none), no
    further than one ``every`` away: missed runs are skipped, not caught up."""
    if current is None:
        return now
    if current > now:
        return min(current, now + every)
    return current + ((now - current) // every + 1) * every
