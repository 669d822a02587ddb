"""Planning the notices of many subscriptions at once: a project adopting the package, or a
rule pack that changed.

:func:`plan_all` leaves each subscription it covers with exactly the notices that
:func:`~renewals.services.scheduling.plan_notices` would give it (the same windows, send
times, channels and statuses, computed by the same helpers), but works in chunks of
subscriptions ordered by primary key. Per chunk, in one transaction: lock the chunk's rows,
read their notices in one query, compute in Python, insert the new notices in one statement
(the unique (subscription, renewal, rule) constraint skips any that exist), withdraw the stale
ones in one UPDATE and append one audit event.

The audit event is one per chunk, on the system chain, with the counts and the range of
subscription ids, and the binding of every notice the chunk wrote (their windows are
evidence the renewal gate trusts: :mod:`.row_binding`), rather than one per subscription on
each subscription's chain: an event per subscription (its canonical JSON, hash, insert and
head) would cost three times the planning itself. Verification takes a notice's newest
binding, this one or a later one on its subscription's chain (the sweep's, when it is given).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper, F, Model, Q, QuerySet
from django.utils import timezone

from notifications.db import psycopg3

from ..conf import renewals_settings
from ..models import (
    LIVE_STATUSES,
    PENDING_NOTICE_STATUSES,
    NoticeStatus,
    RenewalNotice,
    RenewalTerms,
    Subscription,
)
from .audit import NewEvent, record_events
from .row_binding import NOTICE_FIELDS, notice_binding
from .scheduling import needs_replanning, notice_fields, rules_for

#: The subscriptions whose next renewal will happen, as ``plan_notices`` decides it.
WILL_RENEW = Q(status__in=LIVE_STATUSES, auto_renew=True, next_renewal_at__isnull=False)

DEFAULT_BATCH_SIZE = 2000

#: The system-chain event of each chunk a run planned, which binds the notices it wrote.
BATCH_PLANNED = "notices_planned_batch"

_M = TypeVar("_M", bound=Model)


@dataclass
class PlanTotals:
    """What a :func:`plan_all` run did."""

    subscriptions: int = 0  # subscriptions that will renew, looked at
    planned: int = 0  # notices inserted
    replanned: int = 0  # notices planned afresh: their renewal came back, or the user moved zone
    withdrawn: int = 0  # pending notices withdrawn: their renewal moved or will not happen
    chunks: int = 0

    def add(self, other: PlanTotals) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


class _Notice(NamedTuple):
    pk: int
    status: str
    time_zone: str


#: A notice to insert: subscription id, renewal, rule id, and the planned fields.
_New = tuple[int, dt.datetime, str, dict[str, Any]]

#: What planning reads back of each notice it wrote, to bind it.
_WRITTEN = ("pk", *NOTICE_FIELDS)


def plan_all(
    *, policy: str | None = None, batch_size: int = DEFAULT_BATCH_SIZE, workers: int = 1
) -> PlanTotals:
    """Plan the notices of every subscription (of pack ``policy`` only, if given), as
    ``plan_notices`` would one by one; return the totals.

    Subscriptions that will renew get the notices their next renewal requires; the pending
    notices of any covered subscription that its renewal no longer requires are withdrawn.
    Idempotent: a second run changes nothing and records no event. Each chunk of
    ``batch_size`` subscriptions is its own transaction, so a run stopped half way keeps the
    chunks it finished and a new run completes it.

    ``workers`` threads plan chunks side by side, each on its own database connection, so
    one computes while the database writes another's chunk. Called inside a transaction (whose
    rows other connections cannot see), or on SQLite (which takes one writer at a time), one
    worker plans on the caller's connection.
    """
    if batch_size < 1 or workers < 1:
        raise ValueError(f"batch_size and workers must be at least 1, got {batch_size}, {workers}.")
    if connection.in_atomic_block or connection.vendor == "sqlite":
        workers = 1
    chunks = _Chunks(policy, batch_size)
    if workers == 1:
        return _work(chunks)
    with ThreadPoolExecutor(workers, thread_name_prefix="renewals_plan") as pool:
        results = [pool.submit(_work_on_own_connection, chunks) for _ in range(workers)]
    totals = PlanTotals()
    for result in results:
        totals.add(result.result())
    return totals


def _subscriptions(policy: str | None) -> QuerySet[Subscription]:
    objects = Subscription.objects.all()
    return objects if policy is None else objects.filter(policy=policy)


class _Chunks:
    """Hands out the chunks of a run, as ranges ``(after, through]`` of subscription ids
    (``None``: unbounded), to one worker at a time, in id order."""

    def __init__(self, policy: str | None, batch_size: int) -> None:
        self.policy = policy
        self.batch_size = batch_size
        self.after: int | None = None
        self.done = False
        self.lock = threading.Lock()

    def next(self) -> tuple[int | None, int | None] | None:
        with self.lock:
            if self.done:
                return None
            after = self.after
            later = _subscriptions(self.policy).order_by("pk")
            if after is not None:
                later = later.filter(pk__gt=after)
            through = later.values_list("pk", flat=True)[self.batch_size - 1 :].first()
            self.after = through
            self.done = through is None
            return after, through

    def stop(self) -> None:
        with self.lock:
            self.done = True


def _work(chunks: _Chunks) -> PlanTotals:
    planner = _ChunkPlanner(chunks.policy)
    totals = PlanTotals()
    try:
        while (chunk := chunks.next()) is not None:
            with transaction.atomic():
                totals.add(planner.plan(*chunk))
    except BaseException:
        chunks.stop()
        raise
    return totals


def _work_on_own_connection(chunks: _Chunks) -> PlanTotals:
    try:
        return _work(chunks)
    finally:
        connection.close()


class _ChunkPlanner:
    """What one worker keeps between chunks: the settings, read once, and terms by id."""

    def __init__(self, policy: str | None) -> None:
        self.policy = policy
        self.send_hours = renewals_settings.SEND_HOURS
        self.retry_margin_hours = renewals_settings.RETRY_MARGIN_HOURS
        self.terms: dict[int, RenewalTerms] = {}

    def plan(self, after: int | None, through: int | None) -> PlanTotals:
        """Plan the subscriptions with ids in ``(after, through]``; return what it did."""
        if connection.vendor == "postgresql":
            # Planning is idempotent: should the server crash, rerunning redoes the chunks
            # whose commit it lost. Not waiting for each commit's flush saves a disk sync each.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        rows = self.lock_renewing(after, through)
        current, pending = self.notices_of(rows, after, through)
        now = timezone.now()
        new, replans, keep = self.compare(rows, current, now)
        inserted = _insert(new, now)
        replanned = [notice.pk for notice, planned in replans if _replan(notice, planned, now)]
        written = [*inserted, *_written(replanned)]
        totals = PlanTotals(
            subscriptions=len(rows),
            planned=len(inserted),
            replanned=len(replanned),
            withdrawn=self.withdraw(pending - keep, after, through, now),
            chunks=1,
        )
        if totals.planned or totals.replanned or totals.withdrawn:
            record_events(
                [
                    NewEvent(
                        BATCH_PLANNED,
                        data={
                            "policy": self.policy,
                            "after_id": after,
                            "through_id": through,
                            "subscriptions": totals.subscriptions,
                            "planned": totals.planned,
                            "replanned": totals.replanned,
                            "withdrawn": totals.withdrawn,
                        },
                        rows=[notice_binding(notice["pk"], notice) for notice in written],
                    )
                ]
            )
        return totals

    def compare(
        self, rows: list[tuple[Any, ...]], current: dict[tuple[int, str], _Notice], now: dt.datetime
    ) -> tuple[list[_New], list[tuple[_Notice, dict[str, Any]]], set[int]]:
        """What the rules require of the locked subscriptions, against their notices: the
        notices to insert, those to plan afresh (with their fields) and the ids of all the
        notices still required."""
        new: list[_New] = []
        replans: list[tuple[_Notice, dict[str, Any]]] = []
        keep: set[int] = set()
        for pk, policy, terms_id, upcoming_id, trial_ends_at, renewal_at, time_zone in rows:
            terms = self.terms[terms_id]
            rules = rules_for(
                policy,
                renewal_at,
                terms=terms,
                renewal_terms=self.terms[upcoming_id] if upcoming_id else terms,
                trial_ends_at=trial_ends_at,
                zone=ZoneInfo(time_zone),
            )
            for rule in rules:
                found = current.get((pk, rule.id))
                if found is not None:
                    keep.add(found.pk)
                    if not needs_replanning(found.status, found.time_zone, time_zone):
                        continue
                planned = notice_fields(
                    rule,
                    renewal_at,
                    policy=policy,
                    time_zone=time_zone,
                    now=now,
                    send_hours=self.send_hours,
                    retry_margin_hours=self.retry_margin_hours,
                )
                if found is None:
                    new.append((pk, renewal_at, rule.id, planned))
                else:
                    replans.append((found, planned))
        return new, replans, keep

    def lock_renewing(self, after: int | None, through: int | None) -> list[tuple[Any, ...]]:
        """The subscriptions in the range that will renew, locked as ``plan_notices`` locks
        one (``FOR NO KEY UPDATE``: inserting their notices still checks the key)."""
        renewing = _in_range(_subscriptions(self.policy).filter(WILL_RENEW), "pk", after, through)
        rows = _fetch(
            renewing.order_by("pk")
            .select_for_update(no_key=True)
            .values_list(
                "pk",
                "policy",
                "terms_id",
                "upcoming_terms_id",
                "trial_ends_at",
                "next_renewal_at",
                "time_zone",
            )
        )
        missing = {row[2] for row in rows} | {row[3] for row in rows if row[3]}
        missing.difference_update(self.terms)
        if missing:
            self.terms.update(RenewalTerms.objects.in_bulk(missing))
        return rows

    def notices_of(
        self, rows: list[tuple[Any, ...]], after: int | None, through: int | None
    ) -> tuple[dict[tuple[int, str], _Notice], set[int]]:
        """The notices of the locked subscriptions that planning may change: by (subscription,
        rule) those for each one's next renewal, of any status; and the ids of those still to
        go out."""
        notices = _in_range(RenewalNotice.objects.all(), "subscription_id", after, through)
        notices = notices.filter(
            Q(status__in=PENDING_NOTICE_STATUSES) | Q(renewal_at=F("subscription__next_renewal_at"))
        ).annotate(
            current=ExpressionWrapper(
                Q(renewal_at=F("subscription__next_renewal_at")), output_field=BooleanField()
            )
        )
        locked = {row[0] for row in rows}
        current: dict[tuple[int, str], _Notice] = {}
        pending: set[int] = set()
        for pk, subscription_id, rule_id, status, time_zone, is_current in notices.values_list(
            "pk", "subscription_id", "rule_id", "status", "time_zone", "current"
        ):
            if subscription_id not in locked:
                continue  # a subscription that will not renew: withdraw() sees to it
            if is_current:
                current[subscription_id, rule_id] = _Notice(pk, status, time_zone)
            if status in PENDING_NOTICE_STATUSES:
                pending.add(pk)
        return current, pending

    def withdraw(
        self, stale: set[int], after: int | None, through: int | None, now: dt.datetime
    ) -> int:
        """Withdraw the ``stale`` notices and the pending notices of the subscriptions in the
        range that will not renew; return how many were withdrawn.

        The second half is checked in the same statement, so a subscription resumed meanwhile
        keeps the notice its own planning just made.
        """
        ended = _in_range(_subscriptions(self.policy).exclude(WILL_RENEW), "pk", after, through)
        return (
            RenewalNotice.objects.filter(status__in=PENDING_NOTICE_STATUSES)
            .filter(Q(pk__in=stale) | Q(subscription__in=ended))
            .update(status=NoticeStatus.WITHDRAWN, lease_until=None, updated_at=now)
        )


def _in_range(
    queryset: QuerySet[_M], field: str, after: int | None, through: int | None
) -> QuerySet[_M]:
    if after is not None:
        queryset = queryset.filter(**{f"{field}__gt": after})
    if through is not None:
        queryset = queryset.filter(**{f"{field}__lte": through})
    return queryset


def _fetch(queryset: QuerySet[Any, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows of a ``values_list`` query.

    On psycopg 3 the timestamps are read by psycopg's own (C) loader: Django's is pure
    Python, some 6 µs a value, a fifth of planning a subscription. Both give the same aware
    instants, in the session's time zone, which Django sets.
    """
    if not _psycopg3():
        return list(queryset)
    from psycopg.types.datetime import TimestamptzLoader

    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return rows


def _psycopg3() -> bool:
    """Is the connection PostgreSQL through psycopg 3 (whose COPY and loaders we use)?"""
    return psycopg3(connection)


def _replan(found: _Notice, planned: dict[str, Any], now: dt.datetime) -> int:
    """Plan an existing notice afresh, unless the sweep took it meanwhile; 1 if it was."""
    return RenewalNotice.objects.filter(
        pk=found.pk, status=found.status, time_zone=found.time_zone
    ).update(**planned, updated_at=now)


def _insert(new: Sequence[_New], now: dt.datetime) -> list[dict[str, Any]]:
    """Insert the new notices, skipping any that exist; return the inserted ones
    (:data:`_WRITTEN`)."""
    if not new:
        return []
    if _psycopg3():
        return _copy_insert(new, now)
    RenewalNotice.objects.bulk_create(
        (
            RenewalNotice(subscription_id=pk, renewal_at=renewal_at, rule_id=rule_id, **planned)
            for pk, renewal_at, rule_id, planned in new
        ),
        batch_size=500,
        ignore_conflicts=True,
    )
    # bulk_create(ignore_conflicts=True) returns no ids: read the rows back by their key.
    keys = {(pk, renewal_at, rule_id) for pk, renewal_at, rule_id, _planned in new}
    rows = RenewalNotice.objects.filter(
        subscription_id__in={key[0] for key in keys}, rule_id__in={key[2] for key in keys}
    ).values(*_WRITTEN)
    return [
        row for row in rows if (row["subscription_id"], row["renewal_at"], row["rule_id"]) in keys
    ]


def _written(ids: Sequence[int]) -> list[dict[str, Any]]:
    """The notices ``ids`` as written (:data:`_WRITTEN`)."""
    return list(RenewalNotice.objects.filter(pk__in=ids).values(*_WRITTEN)) if ids else []


def _copy_insert(new: Sequence[_New], now: dt.datetime) -> list[dict[str, Any]]:
    """PostgreSQL on psycopg 3: ``bulk_create(ignore_conflicts=True)`` at COPY speed.

    ``bulk_create`` prepares every field of every row in Python (over 100 µs a row, more
    than planning it). Here a column whose value is the same on every row (the rule's channels, the
    pack, the defaults of the fields planning does not set) is sent once, as a parameter;
    the others go by binary COPY into a temporary table, and one ``INSERT ... SELECT ...
    ON CONFLICT DO NOTHING RETURNING`` moves the rows and returns those inserted.
    """
    by_name = {field.attname: field for field in RenewalNotice._meta.concrete_fields}
    names = ["subscription_id", "renewal_at", "rule_id", *new[0][3]]
    rows = ((pk, at, rule_id, *planned.values()) for pk, at, rule_id, planned in new)
    columns = dict(zip(names, zip(*rows, strict=True), strict=True))
    from psycopg.types.datetime import TimestamptzLoader

    template = RenewalNotice()
    constants = {
        field: field.pre_save(template, add=True)
        for name, field in by_name.items()
        if name not in columns and not field.primary_key
    }
    constants[by_name["created_at"]] = constants[by_name["updated_at"]] = now
    staged = [(by_name["subscription_id"], columns.pop("subscription_id"))]  # one at least
    for name, values in columns.items():
        if all(value == values[0] for value in values):
            constants[by_name[name]] = values[0]
        else:
            staged.append((by_name[name], values))
    table = _quoted(RenewalNotice._meta.db_table)
    staged_columns = ", ".join(_quoted(field.column) for field, _values in staged)
    constant_columns = "".join(f", {_quoted(field.column)}" for field in constants)
    casts = "".join(f", %s::{field.cast_db_type(connection)}" for field in constants)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE renewals_plan_stage AS "
            f"SELECT {staged_columns} FROM {table} WITH NO DATA"
        )
        cursor.execute("SELECT * FROM renewals_plan_stage LIMIT 0")
        types = [column.type_code for column in cursor.description]
        with cursor.copy("COPY renewals_plan_stage FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for row in zip(*(values for _field, values in staged), strict=True):
                copy.write_row(row)
        returned = ", ".join(
            _quoted(by_name["id" if name == "pk" else name].column) for name in _WRITTEN
        )
        # The inserted rows come back through psycopg's own timestamp loader, as in _fetch().
        cursor.adapters.register_loader("timestamptz", TimestamptzLoader)
        cursor.execute(
            f"INSERT INTO {table} ({staged_columns}{constant_columns}) "
            f"SELECT renewals_plan_stage.*{casts} FROM renewals_plan_stage "
            f"ON CONFLICT DO NOTHING RETURNING {returned}",
            [field.get_db_prep_save(value, connection) for field, value in constants.items()],
        )
        inserted = [dict(zip(_WRITTEN, row, strict=True)) for row in cursor.fetchall()]
        cursor.execute("DROP TABLE renewals_plan_stage")
    return inserted


def _quoted(name: str | None) -> str:
    assert name is not None  # a concrete field's column
    return connection.ops.quote_name(name)
