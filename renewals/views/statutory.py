"""The statutory flows a rule pack names: Germany's cancellation button (BGB § 312k) and the
EU's withdrawal function (Directive 2011/83/EU, Art. 11a).

Each flow, under the code of the pack in its address, has a start page with the button the
pack labels (``cancellation.labels["start"]``), a confirmation page whose form ends in the
pack's final button (``labels["confirm"]``), and a receipt: the declaration as received, with
its date and time, to print or download as text. None needs a login (the packs say
``login_required = false``); a signed-in consumer chooses among their own contracts. Every
declaration ends in :func:`~renewals.services.declarations.declare`.

The receipt's address holds a signed token of the declaration, valid for
:data:`RECEIPT_VALID_FOR`; a bad or expired token answers 404.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from ..exceptions import UnknownPolicy
from ..models import ContractDeclaration, DeclarationStatus, Subscription
from ..policies import CancellationFlow, RulePack, get_pack
from ..services.declarations import can_end, declare
from ..statutory_forms import CancellationForm, DeclarationForm
from .throttle import ip_retry_after, too_many_requests

RECEIPT_SALT = "renewals.declaration_receipt"
#: How long the receipt's address shows the declaration; the download keeps it for good.
RECEIPT_VALID_FOR = dt.timedelta(days=30)


@dataclass(frozen=True)
class Route:
    """One statutory flow: its URL names' prefix, the form, and the labels a pack that names
    none gets."""

    name: str
    flow: CancellationFlow
    form_class: type[DeclarationForm]
    default_labels: dict[str, Any]

    @property
    def withdrawal(self) -> bool:
        return self.flow is CancellationFlow.WITHDRAWAL


CANCEL_CONTRACT = Route(
    "cancel_contract",
    CancellationFlow.TWO_STEP_BUTTON,
    CancellationForm,
    {"start": _("Cancel contracts here"), "confirm": _("Cancel now")},
)
WITHDRAW = Route(
    "withdraw",
    CancellationFlow.WITHDRAWAL,
    DeclarationForm,
    {"start": _("Withdraw from contract here"), "confirm": _("Confirm withdrawal")},
)

#: The route of each statutory flow.
ROUTES = {route.flow: route for route in (CANCEL_CONTRACT, WITHDRAW)}


def urls(route: Route, prefix: str) -> list[URLPattern]:
    """The route's four addresses under ``prefix``: start page, confirmation page, receipt
    and its text file, named ``<route.name>``, ``…_confirm``, ``…_done``, ``…_declaration``."""
    kwargs = {"route": route}
    return [
        path(f"{prefix}/<slug:policy>/", start, kwargs, name=route.name),
        path(f"{prefix}/<slug:policy>/confirm/", confirm, kwargs, name=f"{route.name}_confirm"),
        path(f"{prefix}/done/<str:token>/", done, kwargs, name=f"{route.name}_done"),
        path(
            f"{prefix}/done/<str:token>/declaration.txt",
            declaration_text,
            kwargs,
            name=f"{route.name}_declaration",
        ),
    ]


@dataclass(frozen=True)
class ContractLink:
    """A link from the holder's manage page into the statutory flow for one contract."""

    label: str
    url: str


def contract_link(subscription: Subscription, at: dt.datetime) -> ContractLink | None:
    """The way into the statutory flow of the subscription's rule pack, for its holder:
    a cancellation button always (BGB § 312k wants it reachable at all times), a withdrawal
    function while the contract can be withdrawn from; ``None`` under a pack with neither
    flow, or out of the withdrawal period. The link preselects the contract while the flow
    can end it (:func:`~renewals.services.declarations.can_end`)."""
    pack = get_pack(subscription.policy)
    route = ROUTES.get(pack.cancellation.flow)
    if route is None:
        return None
    offered = can_end(subscription, route.flow, at)
    if route.withdrawal and not offered:
        return None
    url = reverse(f"renewals:{route.name}_confirm", args=[subscription.policy])
    if offered:
        url = f"{url}?{urlencode({'contract': subscription.pk})}"
    return ContractLink(labels(pack, route)["start"], url)


def labels(pack: RulePack, route: Route) -> dict[str, str]:
    """The start and final buttons' labels: the pack's legally worded ones, else defaults."""
    return {
        key: pack.cancellation.labels.get(key) or str(default)
        for key, default in route.default_labels.items()
    }


@require_safe
def start(request: HttpRequest, policy: str, *, route: Route) -> HttpResponse:
    """A page with the start button, to link to from anywhere (the ``statutory_button``
    template tag puts the button itself on a page)."""
    pack = _pack(policy, route)
    return render(
        request,
        "renewals/statutory/start.html",
        {
            "withdrawal": route.withdrawal,
            "labels": labels(pack, route),
            "confirm_url": reverse(f"renewals:{route.name}_confirm", args=[policy]),
        },
    )


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def confirm(request: HttpRequest, policy: str, *, route: Route) -> HttpResponse:
    """The confirmation page: GET shows the form and changes nothing; a valid POST records the
    declaration and redirects to its receipt. ``?contract=<id>`` preselects one of the signed-in
    consumer's contracts that the flow can end (404 for any other). POSTs are counted per
    client IP (``RENEWALS["LINK_RATE_LIMIT"]["IP"]``); past the limit the answer is 429."""
    pack = _pack(policy, route)
    if request.method == "POST":
        retry_after = ip_retry_after(request, "declaration:ip")
        if retry_after is not None:
            return too_many_requests(request, retry_after)
    user = request.user if request.user.is_authenticated else None
    now = timezone.now()
    form = route.form_class(
        request.POST if request.method == "POST" else None, flow=route.flow, user=user, at=now
    )
    if request.method == "POST" and form.is_valid():
        declaration = declare(
            policy, form.statement(), declarant=user, contract=form.chosen_contract, at=now
        )
        return redirect(f"renewals:{route.name}_done", token=receipt_token(declaration))
    if "contract" in request.GET:
        form.initial["contract"] = _preselected(form, request.GET["contract"])
    return render(
        request,
        "renewals/statutory/confirm.html",
        {"withdrawal": route.withdrawal, "labels": labels(pack, route), "form": form},
    )


@never_cache
@require_safe
def done(request: HttpRequest, token: str, *, route: Route) -> HttpResponse:
    """The receipt: the declaration as received, with its date and time."""
    declaration = _declaration(token, route)
    response = render(
        request,
        "renewals/statutory/done.html",
        _receipt(declaration, route, token),
    )
    response["Referrer-Policy"] = "same-origin"  # the address holds the token
    return response


@never_cache
@require_safe
def declaration_text(request: HttpRequest, token: str, *, route: Route) -> HttpResponse:
    """The receipt as a text file, to keep on a durable medium."""
    declaration = _declaration(token, route)
    text = render_to_string(
        "renewals/statutory/declaration.txt", _receipt(declaration, route, token), request
    )
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    received = declaration.local(declaration.received_at)
    filename = f"{route.name.replace('_', '-')}-{received:%Y%m%d-%H%M%S}.txt"
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Referrer-Policy"] = "same-origin"
    return response


def receipt_token(declaration: ContractDeclaration) -> str:
    """The signed token in the address of ``declaration``'s receipt."""
    return signing.dumps(declaration.pk, salt=RECEIPT_SALT)


def _pack(policy: str, route: Route) -> RulePack:
    """The pack ``policy`` if its cancellation flow is the route's; else 404."""
    try:
        pack = get_pack(policy)
    except UnknownPolicy:
        raise Http404("No such rule pack.") from None
    if pack.cancellation.flow != route.flow:
        raise Http404("The rule pack has no such flow.")
    return pack


def _preselected(form: DeclarationForm, value: str) -> int:
    """The id of the contract to preselect, if the form offers it; else 404."""
    if not (
        form.offered is not None
        and value.isascii()
        and value.isdigit()
        and form.offered.filter(pk=int(value)).exists()
    ):
        raise Http404("No such contract to end here.")
    return int(value)


def _declaration(token: str, route: Route) -> ContractDeclaration:
    try:
        pk = signing.loads(token, salt=RECEIPT_SALT, max_age=RECEIPT_VALID_FOR)
    except signing.BadSignature:  # tampered or expired
        raise Http404("No such receipt.") from None
    declaration = ContractDeclaration.objects.select_related("subscription").filter(pk=pk).first()
    if declaration is None or declaration.is_withdrawal != route.withdrawal:
        raise Http404("No such receipt.")
    return declaration


def _receipt(declaration: ContractDeclaration, route: Route, token: str) -> dict[str, Any]:
    """What the receipt shows. What became of the declaration only to the contract's holder
    (signed in when they made it): anyone else sees the declaration alone."""
    contract = declaration.holders_contract
    ends_at = None
    if contract is not None and declaration.status == DeclarationStatus.APPLIED:
        ends_at = contract.next_renewal_at
    return {
        "withdrawal": route.withdrawal,
        "declaration": declaration,
        "zone": declaration.zone,
        "labels": labels(get_pack(declaration.policy), route),
        "contract": contract,
        "ends_at": ends_at,
        "download_url": reverse(f"renewals:{route.name}_declaration", args=[token]),
    }
