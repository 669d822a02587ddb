"""Every page the package renders, checked for what assistive technology relies on: the
page's language, one ``h1`` and no skipped heading level, a label for every control, buttons
that are ``<button>``, no positive ``tabindex`` (focus follows the document), and
``aria-*`` references that point at something."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from freezegun import freeze_time
from pytest_django import Settings

from example_project import settings as example_settings
from example_project.demo_clock import DemoClock
from renewals.models import Status

from .routes import CASES, NOW, SAFE, Whose, World, build_world

pytestmark = pytest.mark.django_db

EXAMPLE_TEMPLATES = Path(example_settings.__file__).parent / "templates"
#: Inputs that are not controls a person fills in.
UNLABELLED_INPUTS = frozenset({"hidden"})


class Page(HTMLParser):
    """What the checks read from a rendered page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.lang: str | None = None
        self.headings: list[int] = []
        self.ids: set[str] = set()
        self.labelled: set[str] = set()  # ids that a <label for> names
        self.controls: list[dict[str, str | None]] = []
        self.references: list[str] = []  # ids named by aria-labelledby / aria-describedby
        self.problems: list[str] = []
        self._open_labels = 0
        self._button_text: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "html":
            self.lang = attributes.get("lang")
        if attributes.get("id"):
            self.ids.add(str(attributes["id"]))
        for name in ("aria-labelledby", "aria-describedby"):
            self.references += (attributes.get(name) or "").split()
        tabindex = attributes.get("tabindex")
        if tabindex is not None and int(tabindex) > 0:
            self.problems.append(f"positive tabindex on <{tag}>")
        if len(tag) == 2 and tag[0] == "h" and tag[1] in "123456":
            self.headings.append(int(tag[1]))
        elif tag == "label":
            self._open_labels += 1
            if attributes.get("for"):
                self.labelled.add(str(attributes["for"]))
        elif tag == "input" and attributes.get("type") in {"submit", "button", "reset", "image"}:
            self.problems.append(f"<input type={attributes['type']}> instead of a <button>")
        elif tag in {"input", "select", "textarea"}:
            if attributes.get("type") not in UNLABELLED_INPUTS:
                self.controls.append({**attributes, "in_label": "yes" if self._open_labels else ""})
        elif tag == "button":
            self._button_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._open_labels -= 1
        elif tag == "button" and self._button_text is not None:
            if not "".join(self._button_text).strip():
                self.problems.append("a button without text")
            self._button_text = None

    def handle_data(self, data: str) -> None:
        if self._button_text is not None:
            self._button_text.append(data)

    def unlabelled(self) -> list[dict[str, str | None]]:
        return [
            control
            for control in self.controls
            if not (
                control["in_label"]
                or control.get("id") in self.labelled
                or control.get("aria-label")
                or control.get("aria-labelledby")
            )
        ]


def assert_accessible(response: Any) -> None:
    assert response.status_code < 500
    assert response["Content-Type"].startswith("text/html"), response["Content-Type"]
    page = Page(response.content.decode())
    assert page.lang, "<html> has no lang"
    assert page.headings.count(1) == 1, f"headings {page.headings}: one h1"
    skipped = [(a, b) for a, b in pairwise(page.headings) if b > a + 1]
    assert not skipped, f"heading levels skipped: {skipped}"
    assert page.unlabelled() == []
    assert sorted(set(page.references) - page.ids) == [], "aria-* names ids not on the page"
    assert page.problems == []


@pytest.fixture(autouse=True)
def _now() -> Iterator[None]:
    with freeze_time(NOW):
        yield


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.fixture
def owner(world: World) -> Client:
    client = Client()
    client.force_login(world.owner)
    return client


def html_pages() -> list[str]:
    """The routes whose own GET shows a page (not the API's JSON, not a text file)."""
    return [
        key
        for key, case in CASES.items()
        if case.methods & SAFE and not key.startswith("api") and not key.endswith("_declaration")
    ]


@pytest.mark.parametrize("key", html_pages())
def test_every_page_is_accessible(key: str, world: World, owner: Client) -> None:
    assert_accessible(CASES[key].send(owner, "GET", world))


def test_the_manage_page_with_every_kind_of_subscription_and_a_message(
    world: World, owner: Client
) -> None:
    owner.post(reverse("renewals:auto_renew_off", args=[world.pk("subscription", Whose.OWN)]))
    assert_accessible(owner.get(reverse("renewals:manage")))


def test_a_consent_form_with_its_error(world: World, owner: Client) -> None:
    on = reverse("renewals:auto_renew_on", args=[world.pk("paused", Whose.OWN)])
    response = owner.post(on, {"auto_renew_consent": "no"})
    assert "Tick the box" in response.text
    assert_accessible(response)


@pytest.mark.parametrize(("flow", "policy"), [("cancel_contract", "de"), ("withdraw", "eu")])
def test_a_statutory_form_with_errors(flow: str, policy: str, client: Client) -> None:
    response = client.post(
        reverse(f"renewals:{flow}_confirm", args=[policy]),
        {"kind": "extraordinary", "ends": "date", "phone": "12"},
    )
    assert response.context["form"].errors
    assert_accessible(response)


def test_the_one_click_pages(world: World, client: Client) -> None:
    link = CASES["one_click_cancel"].url(world, Whose.OWN)
    assert_accessible(client.post(link, follow=True))  # the confirmation
    assert_accessible(client.get(reverse("renewals:one_click_cancel", args=["x.y"])))  # 400
    with freeze_time(NOW + dt.timedelta(days=60)):
        assert_accessible(client.get(link))  # 410
    world.own("subscription").transition_to(Status.CANCELED)
    assert_accessible(client.get(link))  # ended


def test_the_too_many_requests_page(world: World, client: Client, settings: Settings) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "LINK_RATE_LIMIT": {"IP": (1, 60)}}
    link = CASES["one_click_cancel"].url(world, Whose.OWN)
    client.get(link)
    refused = client.get(link)
    assert refused.status_code == 429
    assert_accessible(refused)


def test_the_checks_find_what_they_look_for() -> None:
    page = Page(
        '<html><h1>A</h1><h3>B</h3><h1>C</h1><input type="text" id="name">'
        '<input type="submit" value="Go"><button tabindex="2"> </button>'
        '<p aria-describedby="missing"></p></html>'
    )
    assert page.lang is None
    assert page.headings == [1, 3, 1]
    assert [control["id"] for control in page.unlabelled()] == ["name"]
    assert page.references == ["missing"]
    assert page.problems == [
        "<input type=submit> instead of a <button>",
        "positive tabindex on <button>",
        "a button without text",
    ]


# --- the example project ---------------------------------------------------------------------


@pytest.fixture
def example(settings: Settings, world: World) -> Client:
    """The example project's pages and templates, signed in as the owner."""
    settings.ROOT_URLCONF = "example_project.urls"
    settings.TEMPLATES = example_settings.TEMPLATES
    client = Client()
    client.force_login(world.owner)
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/subscribe/monthly/",
        "/subscriptions/",
        "/accounts/login/",
        "/accounts/signup/",
        "/account/",
        "/inbox/",
    ],
)
def test_the_example_pages_are_accessible(example: Client, path: str) -> None:
    assert_accessible(example.get(path))


def test_the_examples_consent_form_with_its_error(example: Client) -> None:
    response = example.post("/subscribe/monthly/", {"auto_renew_consent": "no"})
    assert "Tick the box" in response.text
    assert_accessible(response)


def test_the_examples_account_forms_with_their_errors_and_the_time_machine(
    example: Client, demo_clock: DemoClock
) -> None:
    account = example.post("/account/", {"phone_number": "12", "time_zone": "Nowhere"})
    assert "Enter a mobile number" in account.text
    assert "Time machine: jump to the next reminder" in account.text
    assert_accessible(account)
    device = example.post("/account/devices/", {"platform": "web", "token": "a b"})
    assert "A push token is printable ASCII without spaces." in device.text
    assert_accessible(device)


def relative_luminance(colour: str) -> float:
    """WCAG 2's relative luminance of a ``#rgb`` or ``#rrggbb`` colour."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_on_white(colour: str) -> float:
    return 1.05 / (relative_luminance(colour) + 0.05)


def test_the_examples_colours_meet_wcag_aa_on_its_white_page() -> None:
    """Text 4.5:1; borders, which outline the consent box, 3:1 (WCAG 1.4.3, 1.4.11)."""
    css = (EXAMPLE_TEMPLATES / "example_project" / "base.html").read_text()
    assert "background" not in css  # the page is white: the browser's default
    found = re.findall(r"([\w-]+)\s*:[^;{}]*?(#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b)", css)
    assert found
    for prop, colour in found:
        needed = 4.5 if prop == "color" else 3.0
        assert contrast_on_white(colour) >= needed, f"{prop}: {colour}"
