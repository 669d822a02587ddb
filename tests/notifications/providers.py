"""A fake provider for the HTTP backend tests: records requests, answers from a script."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeAlias

import httpx

#: Makes the response to a request.
Responder: TypeAlias = Callable[[httpx.Request], httpx.Response]
#: What the fake answers a request with: a response factory, or an exception to raise.
Reply: TypeAlias = Responder | Exception


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Responder:
    """A response factory: ``body`` is sent as JSON (``None``: empty body)."""

    def respond(request: httpx.Request) -> httpx.Response:
        content = b"" if body is None else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=headers)

    return respond


class FakeProvider:
    """An ``httpx.MockTransport`` that records each request and plays ``replies`` in order
    (the last one repeats); a reply that is an exception is raised instead."""

    def __init__(self, *replies: Reply) -> None:
        self.requests: list[httpx.Request] = []
        self.replies = list(replies)
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def form(request: httpx.Request) -> dict[str, str]:
    """The urlencoded body of ``request`` as a dict."""
    from urllib.parse import parse_qsl

    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))
