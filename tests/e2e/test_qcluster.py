"""The harness itself: a real qcluster runs a task on either broker, and is gone after."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from .cluster import running_in_group
from .conftest import StartCluster

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_cluster_runs_a_queued_task(start_cluster: StartCluster, broker: str) -> None:
    cluster = start_cluster(broker)

    cluster.enqueue("tests.e2e.tasks.write_row", f"ran on {broker}")

    cluster.wait_until(
        Group.objects.filter(name=f"ran on {broker}").exists, timeout=30, what="the task"
    )


def test_kill_leaves_no_process(start_cluster: StartCluster) -> None:
    cluster = start_cluster()
    assert cluster.process is not None
    group = cluster.process.pid
    # main, sentinel, two workers, pusher, monitor
    assert len(running_in_group(group)) == 6

    cluster.kill()

    assert running_in_group(group) == []
