"""The notice engine at a million rows: batch planning and the sweep's claim, on PostgreSQL,
beside one django-q2 ``Schedule`` row per reminder.

Run: ``DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres TEST_DB_SUFFIX=_nbench
python bench/notice_engine.py [N]`` (default N = 1,000,000; PostgreSQL only). Uses
``bench.settings``, creates and migrates a throwaway test database, inserts N auto-renewing
subscriptions in bulk SQL (``generate_series``: four zones, the ``cn``, ``us-ca`` and ``fr``
packs, one notice each, renewals spread so that the notices' send times spread over the next
30 days), then times:

- ``plan_all()``, with 1 and with 2 workers (the notices are deleted between the two), and
  once more with nothing left to do;
- ``claim_due_notices(now=..., limit=1000)`` with the N notices planned and none due (the
  idle sweep), then with 1,000 of them due, beside the raw ``UPDATE ... WHERE id IN (SELECT
  ... FOR UPDATE SKIP LOCKED) RETURNING id`` floor on the same table; median of 5 runs each,
  and the plan each one's query gets from PostgreSQL;
- the way many teams do it today, one django-q2 ``Schedule`` row per reminder (type ONCE,
  ``next_run`` = the send time): ``bulk_create`` of N of them, 10,000 a call, and one pass of
  django-q2's ``scheduler()`` into the ORM broker, with nothing due and with 1,000 due.

Prints a table; asserts nothing about timings.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("TEST_DB_SUFFIX", "_nbench")

import django

django.setup()

from bulk import subscribers  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_q.brokers import get_broker  # noqa: E402
from django_q.conf import Conf  # noqa: E402
from django_q.models import OrmQ, Schedule  # noqa: E402
from django_q.scheduler import scheduler  # noqa: E402

from renewals.models import AuditEvent, RenewalNotice  # noqa: E402
from renewals.services.batch_planning import plan_all  # noqa: E402
from renewals.services.sweep import claim_due_notices  # noqa: E402
from renewals.testing.factories import make_terms  # noqa: E402

DUE = 1000
REPEAT = 5
T = TypeVar("T")

TABLE = RenewalNotice._meta.db_table

FLOOR = f"""
UPDATE {TABLE} SET status = 'sending', lease_until = %(lease)s
WHERE id IN (
    SELECT id FROM {TABLE}
    WHERE status IN ('planned', 'sending') AND send_at <= %(now)s
      AND (lease_until IS NULL OR lease_until <= %(now)s)
    ORDER BY send_at LIMIT {DUE} FOR UPDATE SKIP LOCKED
) RETURNING id
"""


def sql(statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def timed(operation: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = operation()
    return time.perf_counter() - started, result


def make_subscriptions(count: int) -> None:
    """``count`` live auto-renewing subscriptions, inserted by one ``INSERT ... SELECT``:
    60 % ``cn`` monthly (Asia/Shanghai, or UTC for every tenth), 25 % ``us-ca`` yearly
    (America/Los_Angeles), 15 % ``fr`` monthly (Europe/Berlin). Each pack's renewals start
    as far ahead as its window closes (5, 15 and 31 days) plus two days, and spread over 30
    days, so every notice is planned to go out within the next 30 days, none of them yet."""
    (user,) = subscribers(1)
    monthly = make_terms()
    yearly = make_terms(currency="USD", interval="year", locale="en")
    sql(
        """
        INSERT INTO renewals_subscription (
            user_id, terms_id, policy, status, auto_renew, current_period_start,
            next_renewal_at, time_zone, gateway, gateway_customer_id, gateway_subscription_id,
            gateway_sync_pending, created_at, updated_at)
        SELECT %(user)s,
               CASE WHEN i %% 20 BETWEEN 12 AND 16 THEN %(yearly)s ELSE %(monthly)s END,
               CASE WHEN i %% 20 < 12 THEN 'cn' WHEN i %% 20 < 17 THEN 'us-ca' ELSE 'fr' END,
               'active', true, %(now)s,
               %(now)s + ((i::bigint * 7919) %% (30 * 86400)) * interval '1 second'
                 + CASE WHEN i %% 20 < 12 THEN interval '7 days'
                        WHEN i %% 20 < 17 THEN interval '17 days' ELSE interval '33 days' END,
               CASE WHEN i %% 20 < 12 THEN
                        CASE WHEN i %% 10 = 0 THEN 'UTC' ELSE 'Asia/Shanghai' END
                    WHEN i %% 20 < 17 THEN 'America/Los_Angeles' ELSE 'Europe/Berlin' END,
               'local', '', '', false, %(now)s, %(now)s
        FROM generate_series(1, %(count)s) AS i
        """,
        {
            "user": user.pk,
            "monthly": monthly.pk,
            "yearly": yearly.pk,
            "now": timezone.now(),
            "count": count,
        },
    )
    sql("VACUUM ANALYZE renewals_subscription")


def write_floor() -> float:
    """Seconds to write one notice per subscription by a single ``INSERT ... SELECT`` (fixed
    windows, no send-hour logic, the commit's foreign key checks included): what the
    database alone needs for the rows ``plan_all`` writes."""
    started = time.perf_counter()
    with transaction.atomic():
        sql(
            f"""
            INSERT INTO {TABLE} (
                subscription_id, renewal_at, rule_id, policy, window_opens_at,
                window_closes_at, send_at, time_zone, channels, strategy, fallback_channels,
                delivered_when, message, status, attempts, resends, skipped, last_error,
                created_at, updated_at)
            SELECT id, next_renewal_at, 'renewal-reminder', policy,
                   next_renewal_at - interval '7 days', next_renewal_at - interval '5 days',
                   date_trunc('hour', next_renewal_at - interval '6 days'), time_zone,
                   '["sms", "push"]', 'all', '[]', 'accepted', 'renewals.reminder', 'planned',
                   0, 0, '{{}}', '', now(), now()
            FROM renewals_subscription
            ON CONFLICT DO NOTHING
            """
        )
    return time.perf_counter() - started


def vacuum_notices() -> None:
    sql(f"VACUUM ANALYZE {TABLE}")


def median_ms(operation: Callable[[], T], reset: Callable[[T], None]) -> tuple[float, T]:
    """The median of ``REPEAT`` timed runs of ``operation``, ``reset`` after each."""
    runs = []
    for _ in range(REPEAT):
        seconds, result = timed(operation)
        reset(result)
        runs.append(seconds * 1000)
    return statistics.median(runs), result


def unclaim(ids: list[int]) -> None:
    RenewalNotice.objects.filter(pk__in=ids).update(status="planned", lease_until=None, attempts=0)


def floor_claim(now: dt.datetime) -> list[int]:
    lease = now + dt.timedelta(minutes=5)
    with transaction.atomic():
        return [row[0] for row in sql(FLOOR, {"now": now, "lease": lease})]


def plan_of(statement: str) -> list[str]:
    """The scan lines of PostgreSQL's plan for ``statement``."""
    lines = [row[0].strip() for row in sql(f"EXPLAIN {statement}")]
    return [line for line in lines if "Scan" in line or "Index Cond" in line]


def claim_statement(now: dt.datetime) -> str:
    """The SELECT ... FOR UPDATE SKIP LOCKED that ``claim_due_notices`` runs."""
    with transaction.atomic():
        with CaptureQueriesContext(connection) as captured:
            claim_due_notices(now=now, limit=DUE)
        transaction.set_rollback(True)
    return next(q["sql"] for q in captured.captured_queries if "SKIP LOCKED" in q["sql"])


Row = tuple[str, str, str, str, str]


def measure(count: int) -> tuple[list[Row], list[str]]:
    notes: list[str] = []
    seconds, _ = timed(lambda: make_subscriptions(count))
    notes.append(f"{count:,} subscriptions inserted by INSERT ... SELECT in {seconds:.1f} s.")
    rows, best = measure_planning(count, notes)
    schedules = create_schedules(count)
    rows.append(
        (
            "create the reminders of N subscriptions",
            f"{best:.1f} s (plan_all)",
            "bulk_create N Schedule rows",
            f"{schedules:.1f} s",
            f"{schedules / best:.1f}x",
        )
    )
    rows.extend(measure_claims(notes))
    return rows, notes


def measure_planning(count: int, notes: list[str]) -> tuple[list[Row], float]:
    """plan_all() with 1 and 2 workers beside the database's floor, and a rerun; the rows
    and the best time."""
    floor = write_floor()
    rows: list[Row] = []
    times = []
    for workers in (1, 2):
        sql(f"TRUNCATE {TABLE}, {AuditEvent._meta.db_table}")
        cpu = time.process_time()
        seconds, totals = timed(functools.partial(plan_all, workers=workers))
        cpu = time.process_time() - cpu
        times.append(seconds)
        rows.append(
            (
                f"plan_all(), {workers} worker{'s' * (workers > 1)}",
                f"{seconds:.1f} s ({count / seconds:,.0f}/s; {cpu:.1f} s CPU in Python)",
                "INSERT ... SELECT, the same rows",
                f"{floor:.1f} s",
                f"{seconds / floor:.1f}x floor",
            )
        )
    notes.append(f"plan_all() planned {totals.planned:,} notices in {totals.chunks} chunks.")
    seconds, again = timed(plan_all)
    assert again.planned == again.withdrawn == 0
    rows.append(("plan_all() again, nothing to do", f"{seconds:.1f} s", "", "", ""))
    vacuum_notices()
    return rows, min(times)


def measure_claims(notes: list[str]) -> list[Row]:
    """claim_due_notices() with nothing due and with DUE due, beside the raw floor and a
    django-q2 scheduler pass."""
    now = timezone.now()
    idle_ms, _ = median_ms(lambda: claim_due_notices(now=now, limit=DUE), unclaim)
    idle_plan = plan_of(claim_statement(now))
    pass_idle_ms, _ = timed_ms_scheduler()

    make_due(now)
    claim_ms, claimed = median_ms(lambda: claim_due_notices(now=now, limit=DUE), unclaim)
    assert len(claimed) == DUE, len(claimed)
    claim_plan = plan_of(claim_statement(now))
    floor_ms, floored = median_ms(lambda: floor_claim(now), unclaim)
    assert len(floored) == DUE, len(floored)
    with connection.cursor() as cursor:
        floor_plan = plan_of(cursor.mogrify(FLOOR, {"now": now, "lease": now}))
    pass_ms, fired = timed_ms_scheduler()
    assert fired == DUE, fired

    notes.append("claim_due_notices, nothing due: " + " / ".join(idle_plan))
    notes.append(f"claim_due_notices, {DUE} due: " + " / ".join(claim_plan))
    notes.append(f"raw floor, {DUE} due: " + " / ".join(floor_plan))
    notes.append(
        f"Claims: median of {REPEAT} runs, each committed, then undone. scheduler(): one pass "
        "into the ORM broker (one OrmQ row per fired schedule)."
    )
    return [
        (
            "idle sweep: claim with nothing due",
            f"{idle_ms:.2f} ms",
            "scheduler() pass, nothing due",
            f"{pass_idle_ms:.0f} ms",
            f"{pass_idle_ms / idle_ms:,.0f}x",
        ),
        (
            f"claim {DUE:,} due notices",
            f"{claim_ms:.1f} ms",
            "raw UPDATE ... SKIP LOCKED floor",
            f"{floor_ms:.1f} ms",
            f"{claim_ms / floor_ms:.1f}x floor",
        ),
        (
            f"claim {DUE:,} due notices",
            f"{claim_ms:.1f} ms",
            f"scheduler() pass firing {DUE:,}",
            f"{pass_ms:,.0f} ms",
            f"{pass_ms / claim_ms:,.0f}x",
        ),
    ]


def make_due(now: dt.datetime) -> None:
    """Make ``DUE`` notices, spread over the table, due a minute ago (and their Schedule
    rows too)."""
    step = max(RenewalNotice.objects.count() // DUE, 1)
    ids = list(RenewalNotice.objects.order_by("pk").values_list("pk", flat=True)[::step][:DUE])
    RenewalNotice.objects.filter(pk__in=ids).update(send_at=now - dt.timedelta(minutes=1))
    Schedule.objects.filter(args__in=[str(pk) for pk in ids]).update(
        next_run=now - dt.timedelta(minutes=1)
    )
    vacuum_notices()
    sql("VACUUM ANALYZE django_q_schedule")


def create_schedules(count: int) -> float:
    """One ONCE Schedule per notice, the notice's id as its argument, by bulk_create."""
    started = time.perf_counter()
    batch: list[Schedule] = []
    for pk, send_at in RenewalNotice.objects.values_list("pk", "send_at").iterator(10_000):
        batch.append(
            Schedule(
                func="myapp.tasks.send_reminder",
                args=str(pk),
                schedule_type=Schedule.ONCE,
                next_run=send_at,
            )
        )
        if len(batch) == 10_000:
            Schedule.objects.bulk_create(batch)
            batch = []
    Schedule.objects.bulk_create(batch)
    elapsed = time.perf_counter() - started
    sql("VACUUM ANALYZE django_q_schedule")
    assert Schedule.objects.count() >= count
    return elapsed


def timed_ms_scheduler() -> tuple[float, int]:
    """One django-q2 scheduler pass into the ORM broker; (ms, tasks it queued)."""
    Conf.SYNC = False  # bench.settings runs tasks inline; a real cluster queues them
    broker = get_broker()
    queued = OrmQ.objects.count()
    seconds, _ = timed(lambda: scheduler(broker=broker))
    return seconds * 1000, OrmQ.objects.count() - queued


def quiet_django_q() -> None:
    """django-q2 logs each task it queues at INFO; keep the table readable (and them faster)."""
    logging.getLogger("django-q").setLevel(logging.WARNING)


def machine() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (server,) = cursor.fetchone()
    load = ", ".join(f"{average:.1f}" for average in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs (load average {load} at the start), Python "
        f"{platform.python_version()}, Django {django.__version__}, PostgreSQL {server}, "
        f"{timezone.now():%Y-%m-%d}"
    )


def print_table(rows: list[Row], title: str) -> None:
    header = ("operation", "ours", "django-q2 / floor", "theirs", "ratio")
    table = [header, *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print(title)
    for n, line in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * width for width in widths))


def main(count: int) -> None:
    if connection.vendor != "postgresql":
        raise SystemExit("notice_engine.py needs PostgreSQL: set DATABASE_URL=postgres://...")
    if count < 2 * DUE:
        raise SystemExit(f"N must be at least {2 * DUE:,}: {DUE:,} of the notices fall due.")
    quiet_django_q()
    creation = connection.creation
    name = creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        title = f"N={count:,}; {machine()}"
        rows, notes = measure(count)
    finally:
        connection.close()
        creation.destroy_test_db(name, verbosity=0)
    print_table(rows, title)
    for note in notes:
        print(note)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
