"""The rate limit of the pages anyone may use without a login: the one-click link and the
statutory forms' POSTs, counted by :mod:`renewals.ratelimit` against
``RENEWALS["LINK_RATE_LIMIT"]``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url

from .. import ratelimit
from ..conf import renewals_settings


def ip_retry_after(request: HttpRequest, scope: str) -> int | None:
    """Count the request in ``scope`` per client IP (``REMOTE_ADDR``) against
    ``LINK_RATE_LIMIT["IP"]``; the seconds to wait if it is over the limit."""
    return ratelimit.hit(
        scope, request.META.get("REMOTE_ADDR", ""), renewals_settings.LINK_RATE_LIMIT["IP"]
    )


def too_many_requests(request: HttpRequest, retry_after: int) -> HttpResponse:
    """429 with ``Retry-After``: ``renewals/too_many_requests.html``, which says how long to
    wait and leads to the manage page."""
    response = render(
        request,
        "renewals/too_many_requests.html",
        {"retry_after": retry_after, "manage_url": resolve_url(renewals_settings.MANAGE_URL)},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    response["Referrer-Policy"] = "same-origin"  # the address may hold a one-click token
    return response
