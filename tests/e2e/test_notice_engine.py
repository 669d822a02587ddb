"""The notice engine end to end: ``renewals.tasks.send_due_notices`` on a real qcluster (ORM
and Redis brokers), a cluster killed in the middle of a batch, and four sweeps at once."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from renewals import tasks
from renewals.models import NoticeStatus, RenewalNotice
from tests.concurrency import run_concurrently

from . import config
from .cluster import QCluster, wait_until
from .conftest import StartCluster
from .notices import assert_given_once, count_given, make_due_notices

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SWEEP = "renewals.tasks.send_due_notices"


def sweep_until_given(cluster: QCluster, ids: list[int], *, timeout: float) -> None:
    """Queue a sweep every second, as the schedule does every minute, until every notice in
    ``ids`` is given."""
    queued_at = float("-inf")

    def all_given() -> bool:
        nonlocal queued_at
        if time.monotonic() - queued_at >= 1:
            cluster.enqueue(SWEEP)
            queued_at = time.monotonic()
        return count_given(ids) == len(ids)

    cluster.wait_until(all_given, timeout=timeout, what=f"{len(ids)} notices to be given")


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_every_due_notice_goes_out_once_per_channel(
    start_cluster: StartCluster, broker: str
) -> None:
    ids = make_due_notices(200)
    cluster = start_cluster(broker)

    # Two sweeps at once, one per worker, as when the schedule fires during a long sweep.
    cluster.enqueue(SWEEP)
    cluster.enqueue(SWEEP)

    cluster.wait_until(
        lambda: count_given(ids) == len(ids), timeout=60, what="every notice to be given"
    )
    assert_given_once(ids)


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_cluster_killed_mid_batch_loses_nothing_and_sends_nothing_twice(
    start_cluster: StartCluster, broker: str
) -> None:
    ids = make_due_notices(40)
    # Each message takes 0.1 s: a batch of 10 notices (10 SMS, 10 pushes) takes 2 s.
    cluster = start_cluster(broker, E2E_SEND_DELAY="0.1", E2E_SWEEP_BATCH_SIZE="10")
    cluster.enqueue(SWEEP)
    in_flight = RenewalNotice.objects.filter(pk__in=ids, status=NoticeStatus.SENDING)
    cluster.wait_until(
        lambda: count_given(ids) > 0 and in_flight.exists(),
        timeout=30,
        what="a batch settled and the next claimed",
    )

    cluster.kill()

    # The dead worker's claims stay until their lease ends; the new cluster takes them over.
    assert 0 < count_given(ids) < len(ids)
    assert in_flight.exists()
    cluster.start()
    sweep_until_given(cluster, ids, timeout=60)
    assert_given_once(ids)


def test_four_sweeps_at_once_send_each_notice_once() -> None:
    ids = make_due_notices(200)

    # Leases longer than the test: only the row locks keep the sweeps apart.
    renewals = config.renewals(batch_size=10, lease_seconds=60)
    with override_settings(RENEWALS=renewals, NOTIFICATIONS=config.notifications()):
        results = run_concurrently(lambda _: tasks.send_due_notices(), threads=4)

    assert sum(result["claimed"] for result in results) == len(ids)
    assert_given_once(ids)


def test_a_sweep_longer_than_the_lease_keeps_its_later_claims() -> None:
    ids = make_due_notices(10)
    lease = 4
    renewals = config.renewals(batch_size=5, lease_seconds=lease)

    def sweep(index: int) -> dict[str, int]:
        if index == 1:
            # Start while the first sweep sends its second batch (each takes 2.5 s),
            # claimed less than a lease ago but more than a lease after that sweep began.
            begun = time.monotonic()
            wait_until(lambda: count_given(ids) >= 5, timeout=30, what="the first batch")
            time.sleep(max(0, begun + lease + 0.3 - time.monotonic()))
        return tasks.send_due_notices()

    with override_settings(RENEWALS=renewals, NOTIFICATIONS=config.notifications(send_delay=0.25)):
        first, second = run_concurrently(sweep, threads=2)

    assert (first["claimed"], second["claimed"]) == (10, 0)
    assert_given_once(ids)
