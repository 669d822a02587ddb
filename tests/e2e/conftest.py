"""Fixtures of the end-to-end tests, which need PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from .cluster import BrokerName, QCluster

StartCluster = Callable[..., QCluster]


@pytest.fixture(autouse=True)
def _postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("The end-to-end tests run on PostgreSQL (set DATABASE_URL).")


@pytest.fixture
def start_cluster(transactional_db: None, tmp_path: Path) -> Iterator[StartCluster]:
    """``start_cluster(broker, **env)`` starts a :class:`QCluster` on the test database; each
    is killed, with every process it started, before the database is flushed."""
    clusters: list[QCluster] = []

    def start(broker: BrokerName = "orm", **env: str) -> QCluster:
        cluster = QCluster(broker, tmp_path / f"qcluster-{len(clusters)}.log", **env)
        clusters.append(cluster)
        cluster.start()
        return cluster

    yield start
    for cluster in clusters:
        cluster.close()
