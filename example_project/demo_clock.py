"""The demo's clock: the real time, moved forward by an offset that only ever grows.

:func:`install` makes it ``django.utils.timezone.now``, the one source of "now" that Django
and both apps read (the services, ``auto_now`` fields, sessions, django-q2's broker and
scheduler). :class:`~example_project.apps.ExampleProjectConfig` installs it when
``settings.DEMO_TIME_MACHINE`` is on, in every process of the demo: the site, the qcluster
(whose workers are forked from it) and the management commands. The offset is kept in one
file, ``settings.DEMO_CLOCK_FILE``, read again whenever it changes, so a move made by one
process is what the others read at their next call.

It only moves forward: every time recorded before a move stays in the past, so the audit
chains and the deliveries keep their order and nothing is rewritten. To start the demo
afresh, delete its database and the clock file together.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path

from django.core.files import locks
from django.utils import timezone

#: Django's own ``timezone.now``, which the demo's clock moves.
real_now = timezone.now

ZERO = dt.timedelta(0)


class DemoClock:
    """The real time plus the offset stored in ``path`` (none while the file is missing)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = ZERO
        self._read: tuple[int, int, int] | None = None  # inode, mtime and size read

    def offset(self) -> dt.timedelta:
        """How far ahead of the real time the clock is."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return ZERO
        version = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if version != self._read:
            self._offset = _parse(self.path.read_text(encoding="ascii"), self.path)
            self._read = version
        return self._offset

    def now(self) -> dt.datetime:
        """The demo's time: what ``django.utils.timezone.now()`` returns once installed."""
        return real_now() + self.offset()

    def advance_to(self, moment: dt.datetime) -> dt.timedelta:
        """Move the clock forward so that it reads ``moment`` now; return how far it moved.

        A clock that reads ``moment`` or later already does not move (zero). Two processes
        that move it at once take turns (a lock beside the file), and the file is replaced
        whole, so a reader never sees half an offset.
        """
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            locks.lock(lock, locks.LOCK_EX)
            try:
                current = self.offset()
                offset = moment - real_now()
                if offset <= current:
                    return ZERO
                self._write(offset)
            finally:
                locks.unlock(lock)
        return offset - current

    def _write(self, offset: dt.timedelta) -> None:
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name)
        with os.fdopen(handle, "w", encoding="ascii") as stream:
            stream.write(f"{offset.total_seconds():.6f}\n")
        os.replace(temporary, self.path)


def _parse(text: str, path: Path) -> dt.timedelta:
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(
            f"The demo clock file {path} should hold the seconds the clock is ahead; "
            f"it holds {text[:40]!r}."
        ) from None
    return dt.timedelta(seconds=seconds)


def install(path: Path) -> DemoClock:
    """Make ``django.utils.timezone.now`` read a :class:`DemoClock` kept in ``path``."""
    clock = DemoClock(path)
    timezone.now = clock.now
    return clock


def installed() -> DemoClock | None:
    """The demo clock ``django.utils.timezone.now`` reads, if one is installed."""
    clock = getattr(timezone.now, "__self__", None)
    return clock if isinstance(clock, DemoClock) else None
