"""The one-click cancel link every reminder carries: ``c/<token>/``.

GET shows what the button stops and when, and changes nothing (SMS apps and link scanners
open links to preview them). POST switches auto-renewal off through
:func:`~renewals.services.cancel_auto_renewal`, with no login: holding the link is the
authority. It then redirects to the same address, which shows the confirmation from then
on; posting again changes nothing more.

A tampered link answers 400 and an expired one 410, each leading to the manage page and
showing nothing of any subscription. Requests are counted per token and per client IP
(``RENEWALS["LINK_RATE_LIMIT"]``); past either limit the answer is 429 with ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from .. import ratelimit
from ..conf import renewals_settings
from ..exceptions import LinkExpired, LinkTampered
from ..models import ENDED_STATUSES, AuditEvent, RevokedVia, Subscription
from ..services import cancel_auto_renewal
from ..services.audit import chain_of
from ..tokens import read_one_click_token
from .throttle import ip_retry_after, too_many_requests


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def one_click_cancel(request: HttpRequest, token: str) -> HttpResponse:
    retry_after = _retry_after(request, token)
    if retry_after is not None:
        return too_many_requests(request, retry_after)
    try:
        notice = read_one_click_token(token)
    except LinkExpired:
        return _page(request, "expired", status=410)
    except LinkTampered:
        return _page(request, "invalid", status=400)
    subscription = notice.subscription
    if subscription.status in ENDED_STATUSES:
        return _page(request, "ended", {"subscription": subscription})
    if request.method == "POST":
        cancel_auto_renewal(
            subscription, actor=f"link:notice:{notice.pk}", via=RevokedVia.ONE_CLICK_LINK
        )
        return redirect(request.path)
    context = {
        "subscription": subscription,
        "terms": subscription.renewal_terms(),
        "service_ends_at": subscription.next_renewal_at,
    }
    if subscription.auto_renew:
        return _page(request, "confirm", context)
    return _page(request, "done", {**context, "switched_off_at": _switched_off_at(subscription)})


def _retry_after(request: HttpRequest, token: str) -> int | None:
    """Count the request per client IP and per token; the seconds to wait if over a limit."""
    waits = [
        ip_retry_after(request, "one_click:ip"),
        ratelimit.hit("one_click:token", token, renewals_settings.LINK_RATE_LIMIT["TOKEN"]),
    ]
    return max((wait for wait in waits if wait is not None), default=None)


def _switched_off_at(subscription: Subscription) -> dt.datetime | None:
    """When auto-renewal was last switched off, from the audit log; ``None`` if it never
    was (a subscription still waiting for consent)."""
    return (
        AuditEvent.objects.filter(chain=chain_of(subscription), kind="auto_renewal_cancelled")
        .order_by("-sequence")
        .values_list("occurred_at", flat=True)
        .first()
    )


def _page(
    request: HttpRequest, name: str, context: dict[str, Any] | None = None, *, status: int = 200
) -> HttpResponse:
    """Render ``renewals/one_click/<name>.html``, with a link to the manage page."""
    response = render(
        request,
        f"renewals/one_click/{name}.html",
        {"manage_url": resolve_url(renewals_settings.MANAGE_URL), **(context or {})},
        status=status,
    )
    # The address holds the token: other sites never see it, not even from a project's
    # base template that loads their scripts or fonts.
    response["Referrer-Policy"] = "same-origin"
    return response
