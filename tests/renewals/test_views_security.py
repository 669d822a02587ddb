"""Security of every route the package serves, found by walking ``renewals.urls``: the wrong
method and a read change nothing, a POST without the CSRF token is refused, another user's
object and an unknown one are 404; and no template has a script or a POST form without CSRF.

The routes and how to call them are in :mod:`tests.renewals.routes`; a route without an
entry there fails here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from freezegun import freeze_time
from pytest_django import Settings

from .routes import (
    CASES,
    METHODS,
    NOW,
    ROUTES,
    SAFE,
    STRIPE_WEBHOOK_SECRET,
    Case,
    Whose,
    World,
    build_world,
    state,
)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = (ROOT / "renewals" / "templates", ROOT / "example_project" / "templates")


def case_of(key: str) -> Case:
    if key not in CASES:
        pytest.fail(
            f"The route {key!r} ({ROUTES[key].pattern}) has no entry in tests.renewals.routes."
            "CASES: add one (the methods it takes, how to build its address and body) so the "
            "security tests cover it."
        )
    return CASES[key]


def params(select: Callable[[Case], Iterable[Any]]) -> list[Any]:
    """``(route key, value)`` for each value ``select`` picks from each route's case; a
    route without a case gets one parameter, which fails in :func:`case_of`."""
    found = []
    for key in ROUTES:
        case = CASES.get(key)
        if case is None:
            found.append(pytest.param(key, None, id=f"{key}-no-case"))
            continue
        for value in select(case):
            words = value if isinstance(value, tuple) else (value,)
            label = "-".join(word.name if isinstance(word, Whose) else str(word) for word in words)
            found.append(pytest.param(key, value, id=f"{key}-{label}"))
    return found


@pytest.fixture(autouse=True)
def _now() -> Iterator[None]:
    with freeze_time(NOW):
        yield


@pytest.fixture(autouse=True)
def _stripe_webhook(settings: Settings) -> None:
    """A Stripe gateway beside the default one, so its webhook checks signatures."""
    gateway = {
        "BACKEND": "renewals.gateways.stripe.StripeGateway",
        "OPTIONS": {"api_key": "sk_test_tests", "webhook_secret": STRIPE_WEBHOOK_SECRET},
    }
    settings.RENEWALS = {**settings.RENEWALS, "GATEWAYS": {"stripe": gateway}}


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.fixture
def owner(world: World) -> Client:
    """The owner, signed in (a session; CSRF checks off, as for a browser with the token)."""
    client = Client()
    client.force_login(world.owner)
    return client


@pytest.fixture
def no_csrf(world: World) -> Client:
    """The owner, signed in, sending no CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner)
    return client


# --- the table covers every route ------------------------------------------------------------


def test_every_route_has_a_case() -> None:
    missing = sorted(set(ROUTES) - set(CASES))
    assert not missing, f"Routes with no entry in tests.renewals.routes.CASES: {missing}"
    assert sorted(set(CASES) - set(ROUTES)) == [], "CASES names routes that no longer exist"


@pytest.mark.parametrize("key", list(ROUTES))
def test_a_route_naming_an_id_is_tried_with_another_users_and_an_unknown_one(key: str) -> None:
    if "<int:" in str(ROUTES[key].pattern):
        assert case_of(key).names >= {Whose.THEIRS, Whose.UNKNOWN}


@pytest.mark.parametrize("key", list(ROUTES))
def test_the_case_lists_the_methods_the_route_takes(key: str, world: World, owner: Client) -> None:
    case = case_of(key)
    response = case.send(owner, "OPTIONS", world)
    assert response.status_code == case.refused_with
    if case.refused_with == 405:
        assert set(response["Allow"].split(", ")) == case.methods


@pytest.mark.parametrize(("key", "method"), params(lambda case: case.unsafe_methods))
def test_each_post_of_the_table_acts(key: str, method: str, world: World, owner: Client) -> None:
    """The requests the tests below refuse are ones that change something when allowed."""
    before = state()
    response = case_of(key).send(owner, method, world)
    assert response.status_code < 400, response.content
    assert state() != before


# --- the wrong method, and reading -----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "method"), params(lambda case: [m for m in METHODS if m not in case.methods])
)
def test_any_other_method_is_refused_and_changes_nothing(
    key: str, method: str, world: World, owner: Client
) -> None:
    case = case_of(key)
    before = state()
    assert case.send(owner, method, world).status_code == case.refused_with
    assert state() == before


@pytest.mark.parametrize(("key", "method"), params(lambda case: sorted(case.methods & SAFE)))
def test_reading_shows_and_changes_nothing(
    key: str, method: str, world: World, owner: Client
) -> None:
    before = state()
    assert case_of(key).send(owner, method, world).status_code == 200
    assert state() == before


# --- CSRF ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "method"), params(lambda case: case.unsafe_methods))
def test_a_session_request_without_the_csrf_token_is_refused_and_changes_nothing(
    key: str, method: str, world: World, no_csrf: Client
) -> None:
    """403; a route authenticated by a signature instead is exempt from CSRF, and refuses the
    request without its signature (400)."""
    case = case_of(key)
    before = state()
    response = case.send(no_csrf, method, world, signed=False)
    assert response.status_code == (400 if case.signature else 403)
    assert state() == before


# --- another user's object, an unknown one ---------------------------------------------------


def _tries(case: Case) -> list[tuple[str, Whose]]:
    return [(method, whose) for whose in sorted(case.names, key=str) for method in case.methods]


@pytest.mark.parametrize(("key", "attempt"), params(_tries))
def test_another_users_or_an_unknown_object_is_404_and_changes_nothing(
    key: str, attempt: tuple[str, Whose], world: World, owner: Client
) -> None:
    method, whose = attempt
    before = state()
    response = case_of(key).send(owner, method, world, whose)
    assert response.status_code == 404, response.content
    assert state() == before
    theirs = [world.objects[kind, Whose.THEIRS] for kind in ("subscription", "contract")]
    assert not any(s.terms.service_name.encode() in response.content for s in theirs)


# --- templates -------------------------------------------------------------------------------


def templates() -> list[Path]:
    return sorted(path for folder in TEMPLATE_DIRS for path in folder.rglob("*.html"))


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def without_comments(path: Path) -> str:
    """The template's text without its ``{% comment %}`` blocks, which render nothing."""
    return re.sub(r"{% comment %}.*?{% endcomment %}", "", path.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("path", templates(), ids=_id)
def test_no_template_has_a_script_or_an_event_handler(path: Path) -> None:
    text = without_comments(path)
    assert "<script" not in text.lower()
    assert not re.search(r"<[^>]*\son\w+\s*=", text, re.IGNORECASE)


@pytest.mark.parametrize("path", templates(), ids=_id)
def test_every_post_form_carries_the_csrf_token(path: Path) -> None:
    text = without_comments(path)
    for form in re.finditer(r"<form\b([^>]*)>(.*?)</form>", text, re.DOTALL | re.IGNORECASE):
        attributes, content = form.groups()
        if re.search(r"""method\s*=\s*["']?post""", attributes, re.IGNORECASE):
            assert "{% csrf_token %}" in content, form.group(0)
    assert text.lower().count("<form") == text.lower().count("</form>")
