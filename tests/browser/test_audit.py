"""The audit every page served in the browser tests passes finds what it looks for."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Browser

from .audit import ServedPages, scripts_in, unnamed_controls

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PAGE = """<!doctype html><title>Bad</title>
<form><label for="name">Full name</label><input id="name"><input name="phone">
<input type="checkbox" id="agree"><label for="agree">I agree</label><input type="checkbox">
<select name="plan"><option>Monthly</option></select>
<button onclick="go()">Go</button><button></button></form>
<script>function go() {}</script>"""


def test_scripts_and_inline_handlers_are_found() -> None:
    assert scripts_in(PAGE) == ["an inline handler onclick= on <button>", "a <script> tag"]
    assert scripts_in("<p onmouseover='x()'>Hi</p>") == ["an inline handler onmouseover= on <p>"]
    assert scripts_in('<p class="online">On</p><noscript>No</noscript>') == []


def test_controls_without_a_name_are_found() -> None:
    snapshot = '- textbox "Full name"\n- textbox\n- checkbox [checked]\n- combobox:\n  - option'
    assert unnamed_controls(snapshot) == ["textbox", "checkbox", "combobox"]
    assert unnamed_controls('- button "Go"\n- radio "Monthly" [checked]\n- text: Go') == []


def test_the_pages_a_context_is_served_are_audited(browser: Browser, tmp_path: Path) -> None:
    served = ServedPages(tmp_path)
    context = browser.new_context(record_har_path=served.har_path(), record_har_content="embed")
    context.route("**/*", lambda route: route.fulfill(body=PAGE, content_type="text/html"))
    context.new_page().goto("http://audit.test/page")
    context.close()

    assert served.problems(browser) == [
        "GET http://audit.test/page: an inline handler onclick= on <button>",
        "GET http://audit.test/page: a <script> tag",
        "GET http://audit.test/page: a textbox without a name",
        "GET http://audit.test/page: a checkbox without a name",
        "GET http://audit.test/page: a combobox without a name",
        "GET http://audit.test/page: a button without a name",
    ]


@pytest.mark.urls("example_project.urls")
def test_the_page_a_redirect_leads_to_is_audited_too(
    site: str, browser: Browser, tmp_path: Path
) -> None:
    served = ServedPages(tmp_path)
    context = browser.new_context(record_har_path=served.har_path(), record_har_content="embed")
    checkout = reverse("subscribe", args=["monthly"])
    context.new_page().goto(site + checkout)  # signed out: to the login page
    context.close()

    login = f"{reverse('login')}?next={checkout}"
    assert [request for request, _ in served.pages()] == [
        f"GET {site}{checkout}",
        f"GET {site}{login}",
    ]
    assert served.problems(browser) == []
