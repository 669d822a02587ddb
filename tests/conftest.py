"""Fixtures of the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone
from pytest_django import Settings

from build_support.compile_messages import compile_sources
from example_project.demo_clock import DemoClock


def pytest_configure(config: pytest.Config) -> None:
    """Compile the message catalogs (.po) of the source tree into the .mo files Django reads:
    the repository holds only the sources (a wheel gets them from its build)."""
    compile_sources()


@pytest.fixture(autouse=True, scope="session")
def _urls_imported() -> None:
    """Import the package's URLs (and with them the API's pydantic models) before any test
    freezes time: a module first imported under freezegun would see its fake ``datetime``
    class, for which pydantic builds no schema, and fail a test run of one file alone."""
    import renewals.urls  # noqa: F401


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Every test starts with an empty ``default`` cache: the rate limits of the public pages
    count there, and it outlives a test."""
    cache.clear()


@pytest.fixture
def demo_clock(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DemoClock:
    """The example project's time machine, on: ``timezone.now`` reads a demo clock kept in a
    file of the test's own, as the example's ``AppConfig.ready`` installs it in the demo."""
    settings.DEMO_TIME_MACHINE = True
    settings.DEMO_CLOCK_FILE = tmp_path / "demo_clock"
    clock = DemoClock(settings.DEMO_CLOCK_FILE)
    monkeypatch.setattr(timezone, "now", clock.now)
    return clock
