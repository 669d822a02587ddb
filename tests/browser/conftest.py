"""Fixtures of the browser tests: pytest-playwright on Debian's chromium, the example project
served by Django's live server, and an audit of every page the browser is served.

Chromium is the system's (``apt-get install chromium``), never one ``playwright install``
downloads: ``CHROMIUM`` names it, else ``chromium`` on ``PATH``. ``scripts/test`` finds or
installs it and sets ``CHROMIUM``.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings
from playwright.sync_api import Browser, BrowserContext, Playwright
from pytest_django import Settings
from pytest_django.live_server_helper import LiveServer

from example_project import settings as example_settings

from .audit import ServedPages

#: How long an action or an assertion waits: the pages are local, so a slow one has failed.
TIMEOUT_MS = 5_000


def chromium() -> str:
    """The chromium executable: ``$CHROMIUM``, else ``chromium`` on ``PATH``."""
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(
            f"No chromium at {path or 'chromium on PATH'}: install Debian's "
            "(apt-get install -y chromium) or set CHROMIUM=/path/to/chromium.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def playwright(playwright: Playwright) -> Iterator[Playwright]:
    """pytest-playwright's, with Django's async-safety check off while it runs.

    The sync API runs an asyncio event loop in this thread from start to stop, so Django
    believes every ORM call of the tests is made from async code and raises
    ``SynchronousOnlyOperation``. The tests are plain synchronous code (the live server
    answers in its own thread), so ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set for exactly as long as
    that loop runs: the session's other tests keep the check.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield playwright


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # No sandbox: CI runs as root, where chromium's sandbox refuses to start.
    return {**browser_type_launch_args, "executable_path": chromium(), "args": ["--no-sandbox"]}


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """pytest-django's, serving through the example project's middleware: the server builds
    its middleware chain once, when it starts, so a test's settings cannot change it."""
    address = (
        request.config.getvalue("liveserver")
        or os.environ.get("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    with override_settings(MIDDLEWARE=example_settings.MIDDLEWARE):
        server = LiveServer(address)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser_context_args(
    browser_context_args: dict[str, Any], live_server: LiveServer
) -> dict[str, Any]:
    """Every page works without JavaScript: the pages have none, so the browser runs none."""
    return {**browser_context_args, "base_url": live_server.url, "java_script_enabled": False}


@pytest.fixture
def new_context(
    new_context: Callable[..., BrowserContext], browser: Browser, tmp_path: Path
) -> Iterator[Callable[..., BrowserContext]]:
    """pytest-playwright's (which keeps a screenshot of a failed test's pages), recording the
    pages each context is served; once the test is over, they must all pass the audit."""
    served = ServedPages(tmp_path)
    contexts: list[BrowserContext] = []

    def create(*, locale: str = "en-GB", **kwargs: Any) -> BrowserContext:
        """A new context, whose browser asks for pages in ``locale``."""
        context = new_context(
            locale=locale, record_har_path=served.har_path(), record_har_content="embed", **kwargs
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context

    yield create
    for context in contexts:
        context.close()  # writes its HAR file
    problems = served.problems(browser)
    assert not problems, "Pages that fail the audit:\n" + "\n".join(problems)


@pytest.fixture
def site(live_server: LiveServer, settings: Settings) -> str:
    """The example project on the live server, set up as ``demo_setup`` leaves it (the user
    ``demo``, password ``demo``, with a phone number and a push device); its address."""
    for name in ("TEMPLATES", "LANGUAGES", "NOTIFICATIONS"):
        setattr(settings, name, getattr(example_settings, name))
    # The links in messages open on the live server.
    settings.RENEWALS = {**example_settings.RENEWALS, "BASE_URL": live_server.url}
    call_command("demo_setup", stdout=io.StringIO(), stderr=io.StringIO())
    return live_server.url
