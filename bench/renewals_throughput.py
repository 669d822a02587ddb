"""Operations per second through the renewals services, on the configured database.

Run: ``DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres TEST_DB_SUFFIX=_rbench
python bench/renewals_throughput.py [N]`` (SQLite in memory without DATABASE_URL). Uses
``bench.settings``, creates and migrates a throwaway test database, and times, for N
subscriptions (default 1000): ``subscribe()``, ``plan_notices()`` after each renewal moved,
``record_event()`` from 1 and 8 threads (PostgreSQL only for the threads),
``cancel_auto_renewal()``, ``create_checkpoint()`` and ``verify_audit()``. Prints a table;
asserts nothing about timings.

Every row first runs a few operations under ``CaptureQueriesContext`` (warm-up, and the
queries-per-operation column), then times the rest without query capture.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("TEST_DB_SUFFIX", "_bench")

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import F  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from renewals.models import AuditEvent, RenewalNotice, Subscription  # noqa: E402
from renewals.services import (  # noqa: E402
    cancel_auto_renewal,
    create_checkpoint,
    plan_notices,
    record_event,
    subscribe,
    verify_audit,
)
from renewals.testing.factories import make_consent_evidence, make_terms  # noqa: E402
from renewals.types import User  # noqa: E402

T = TypeVar("T")

#: Operations per row (per thread for the threaded rows) run under query capture, untimed.
SAMPLE = 20
THREADS = 8


@dataclass(frozen=True)
class Row:
    operation: str
    count: int  # what "per second" counts: operations, or events/chains for the one-off rows
    seconds: float
    queries: float  # per operation (per call for the one-off rows)

    def cells(self) -> tuple[str, ...]:
        rate = self.count / self.seconds if self.seconds else float("inf")
        return (
            self.operation,
            str(self.count),
            f"{self.seconds:.3f}",
            f"{rate:,.0f}",
            f"{self.queries:.1f}",
        )


def run(operation: str, items: Sequence[T], op: Callable[[T], Any]) -> Row:
    """``op`` on the first ``SAMPLE`` items under query capture, then timed on the rest."""
    with CaptureQueriesContext(connection) as captured:
        for item in items[:SAMPLE]:
            op(item)
    timed = items[SAMPLE:]
    started = time.perf_counter()
    for item in timed:
        op(item)
    elapsed = time.perf_counter() - started
    return Row(operation, len(timed), elapsed, len(captured) / SAMPLE)


def run_once(operation: str, count: Callable[[], int], op: Callable[[], Any]) -> Row:
    """One call under query capture (warm-up), then one timed call; ``count`` is its size."""
    with CaptureQueriesContext(connection) as captured:
        op()
    started = time.perf_counter()
    op()
    elapsed = time.perf_counter() - started
    return Row(operation, count(), elapsed, len(captured))


def append_concurrently(operation: str, chains: Sequence[Subscription], total: int) -> Row:
    """``total`` appends split over one thread per entry of ``chains``, each on its own
    connection; timed from a common start (after each thread's warm-up) to the last finish."""
    per_thread = total // len(chains)
    barrier = threading.Barrier(len(chains) + 1)
    finished: list[float] = []
    queries: list[int] = []
    errors: list[BaseException] = []

    def worker(subscription: Subscription) -> None:
        try:
            with CaptureQueriesContext(connection) as captured:
                for i in range(SAMPLE):
                    record_event("bench_warmup", subscription=subscription, data={"i": i})
            queries.append(len(captured))
            barrier.wait()
            for i in range(per_thread):
                record_event("bench", subscription=subscription, data={"i": i})
            finished.append(time.perf_counter())
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(s,)) for s in chains]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return Row(
        operation,
        per_thread * len(chains),
        max(finished) - started,
        sum(queries) / (SAMPLE * len(chains)),
    )


def main(count: int) -> None:
    creation = connection.creation
    name = creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        rows, notes, notices = measure(count)
    finally:
        connection.close()
        creation.destroy_test_db(name, verbosity=0)
    print_table(rows, f"{connection.vendor}, N={count}, {notices}")
    for note in notes:
        print(note)


def measure(count: int) -> tuple[list[Row], list[str], str]:
    rows: list[Row] = []
    notes: list[str] = []
    total = count + SAMPLE
    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        user_model(username=f"bench{i}", email=f"bench{i}@example.com") for i in range(total)
    )
    if not connection.features.can_return_rows_from_bulk_insert:  # no primary keys set
        users = list(user_model.objects.order_by("pk"))
    terms = make_terms()
    evidence = make_consent_evidence(terms)

    subscriptions: list[Subscription] = []

    def do_subscribe(user: User) -> None:
        subscriptions.append(subscribe(user, terms, evidence, time_zone="Asia/Shanghai"))

    rows.append(run("subscribe()", users, do_subscribe))
    planned = RenewalNotice.objects.count()

    Subscription.objects.update(next_renewal_at=F("next_renewal_at") + dt.timedelta(days=1))
    rows.append(run("plan_notices() after a move", subscriptions, plan_notices))

    one, own, shared = subscriptions[0], subscriptions[1 : 1 + THREADS], subscriptions[-1]
    rows.append(
        run(
            "record_event() 1 thread, 1 chain",
            range(total),
            lambda i: record_event("bench", subscription=one, data={"i": i}),
        )
    )
    if connection.vendor == "postgresql":
        rows.append(
            append_concurrently(f"record_event() {THREADS} threads, own chains", own, count)
        )
        rows.append(
            append_concurrently(
                f"record_event() {THREADS} threads, 1 chain", [shared] * THREADS, count
            )
        )
    else:
        notes.append(
            f"record_event() from {THREADS} threads skipped: {connection.vendor} serializes "
            "all writers (run with DATABASE_URL=postgres://... for the per-chain locks)."
        )

    rows.append(
        run(
            "cancel_auto_renewal()",
            subscriptions,
            lambda s: cancel_auto_renewal(s, actor=s.user, via="api"),
        )
    )

    chains = AuditEvent.objects.values("chain").distinct().count
    rows.append(run_once("create_checkpoint() (N = chains)", chains, create_checkpoint))

    def verify() -> None:
        report = verify_audit()
        if not report.ok:
            raise SystemExit(f"verify_audit() found a problem: {report.problem}")

    rows.append(run_once("verify_audit() (N = events)", AuditEvent.objects.count, verify))
    notes.append(
        f"First {SAMPLE} operations per row (per thread) untimed, under query capture; "
        "one-off rows: queries per call, timed on a second call."
    )
    return rows, notes, f"{planned / total:.1f} notices planned per subscription"


def print_table(rows: list[Row], title: str) -> None:
    header = ("operation", "N", "seconds", "per second", "queries/op")
    table = [header, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print(title)
    for n, line in enumerate(table):
        first = line[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True))
        print("  ".join((first, *rest)))
        if n == 0:
            print("  ".join("-" * width for width in widths))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
