"""A ``qcluster`` subprocess on the test database: bounded waits, and a kill of its whole
process group that the ``start_cluster`` fixture always makes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import redis
from django.db import connection
from django_q.brokers import Broker, orm, redis_broker
from django_q.tasks import async_task

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("E2E_REDIS_URL", "redis://127.0.0.1:6379/0")

BrokerName = Literal["orm", "redis"]
T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05
) -> T:
    """``condition()``'s first true value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"Waited {timeout:g} s for {what}.")
        time.sleep(interval)


class _RedisBroker(redis_broker.Redis):  # type: ignore[misc]  # django-q2 has no types
    """The Redis broker at ``REDIS_URL``, whatever this process's ``Q_CLUSTER`` says."""

    @staticmethod
    def get_connection(list_key: str | None = None) -> redis.Redis:
        return redis.Redis.from_url(REDIS_URL)


class QCluster:
    """``python -m django qcluster`` with :mod:`tests.e2e.qcluster_settings` on the test
    database of this process, in a process group of its own; ``env`` adds to its environment."""

    def __init__(self, broker: BrokerName, log_path: Path, **env: str) -> None:
        self.database = connection.settings_dict["NAME"]
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.e2e.qcluster_settings",
            "E2E_DATABASE_NAME": self.database,
            "E2E_BROKER": broker,
            "E2E_REDIS_URL": REDIS_URL,
            **env,
        }
        # This process enqueues on the cluster's queue, the test database's name.
        self.broker: Broker = (
            orm.ORM(list_key=self.database)
            if broker == "orm"
            else _RedisBroker(list_key=self.database)
        )
        self.broker.purge_queue()  # what an interrupted run may have left
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> None:
        """Start the cluster (again) and wait until it says it is running."""
        assert self.process is None, "The cluster is running."
        try:
            self.broker.ping()
        except redis.ConnectionError as exc:
            raise RuntimeError(
                f"No Redis at {REDIS_URL} (E2E_REDIS_URL): start one, as .ci/run does."
            ) from exc
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "django", "qcluster"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def running() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"qcluster exited with {self.process.returncode}.{self.log()}")
            return " running." in self.log_path.read_text(errors="replace")[offset:]

        self.wait_until(running, timeout=timeout, what="the cluster to start")

    def kill(self) -> None:
        """SIGKILL the whole cluster (main process, sentinel, workers, pusher, monitor) and
        reap it; nothing of it is left running."""
        if self.process is None:
            return
        process, self.process = self.process, None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        wait_until(
            lambda: not running_in_group(process.pid),
            timeout=10,
            what=f"process group {process.pid} to end",
        )

    def close(self) -> None:
        """Kill the cluster and empty its queue."""
        try:
            self.kill()
        finally:
            self.broker.purge_queue()

    def enqueue(self, func: str, *args: Any) -> str:
        """Queue ``func(*args)`` for the cluster; return the task id."""
        task_id: str = async_task(func, *args, broker=self.broker, sync=False)
        return task_id

    def wait_until(self, condition: Callable[[], T], *, timeout: float, what: str) -> T:
        """:func:`wait_until`, telling the cluster's log when the wait fails."""
        try:
            return wait_until(condition, timeout=timeout, what=what)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}{self.log()}") from None

    def log(self, lines: int = 60) -> str:
        """The end of the cluster's output, to add to a failure message."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n--- qcluster log (end) ---\n" + "\n".join(text.splitlines()[-lines:])


def running_in_group(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that still run (zombies, already dead, do not count)."""
    if not Path("/proc").is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat.rpartition(")")[2].split()[:3]
        if int(group) == pgid and state != "Z":
            found.append(int(entry.name))
    return found
