"""What every page served to the browser must be: free of scripts (no ``<script>``, no
inline ``on…=`` handler), with an accessible name on every form control.

:class:`ServedPages` records each browser context's traffic in a HAR file and checks every
HTML document in it, as it came off the wire (redirects included); the names are checked as
chromium's accessibility tree computes them.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

from playwright.sync_api import Browser

#: Roles of the form controls a user fills in or presses.
CONTROL_ROLES = "button|checkbox|combobox|listbox|radio|searchbox|slider|spinbutton|switch|textbox"
#: A control in an ARIA snapshot without a name: ``- textbox``, not ``- textbox "Full name"``.
_UNNAMED_CONTROL = re.compile(rf"^\s*- ({CONTROL_ROLES})(?: \[[^\]]*\])*:?$", re.MULTILINE)


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.found.append("a <script> tag")
        self.found += [
            f"an inline handler {name}= on <{tag}>" for name, _ in attrs if name.startswith("on")
        ]


def scripts_in(html: str) -> list[str]:
    """The ``<script>`` tags and inline event handlers in ``html``."""
    parser = _Scripts()
    parser.feed(html)
    parser.close()
    return parser.found


def unnamed_controls(aria_snapshot: str) -> list[str]:
    """The roles of the controls without an accessible name in an ARIA snapshot."""
    return _UNNAMED_CONTROL.findall(aria_snapshot)


class ServedPages:
    """The HTML documents served to browser contexts that record into :meth:`har_path`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._numbers = itertools.count()

    def har_path(self) -> Path:
        """Where a new context records its traffic (written when the context closes)."""
        return self.folder / f"context-{next(self._numbers)}.har"

    def pages(self) -> Iterator[tuple[str, str]]:
        """Each HTML response recorded by the contexts closed so far: ``("GET http://…",
        html)``."""
        for har in sorted(self.folder.glob("context-*.har")):
            for entry in json.loads(har.read_text())["log"]["entries"]:
                content = entry["response"]["content"]
                if not content.get("mimeType", "").startswith("text/html"):
                    continue
                text = content.get("text", "")
                if content.get("encoding") == "base64":
                    text = base64.b64decode(text).decode()
                yield f"{entry['request']['method']} {entry['request']['url']}", text

    def problems(self, browser: Browser) -> list[str]:
        """What is wrong with the pages served, one line per finding."""
        found = []
        scratch = browser.new_page(java_script_enabled=False)
        try:
            for request, html in self.pages():
                found += [f"{request}: {problem}" for problem in scripts_in(html)]
                scratch.set_content(html)
                snapshot = scratch.locator("body").aria_snapshot()
                found += [
                    f"{request}: a {role} without a name" for role in unnamed_controls(snapshot)
                ]
        finally:
            scratch.close()
        return found
