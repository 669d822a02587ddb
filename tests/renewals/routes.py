"""Every route of ``renewals.urls``, found by walking its patterns, and how to call each one.

:data:`ROUTES` is what the package serves; :data:`CASES` says, per route (by URL name), which
methods it takes and how to build a request to it for the objects of a :class:`World`: the
signed-in user's own, another user's, or one that does not exist. A route without a case
fails the tests that use the table, so a new route cannot escape them.
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core import signing
from django.db.models import Model
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse

from notifications.devices import register_device
from notifications.models import Device
from renewals import urls
from renewals.forms import ConsentForm
from renewals.models import (
    AuditCheckpoint,
    AuditEvent,
    Consent,
    ContractDeclaration,
    DeclarationKind,
    RenewalNotice,
    StripeEvent,
    Subscription,
)
from renewals.services import plan_notices, record_consent
from renewals.services.declarations import Statement, declare
from renewals.tokens import one_click_token
from renewals.types import User
from renewals.views.statutory import RECEIPT_SALT, receipt_token

from ..types import ClientResponse
from .factories import make_evidence, make_subscription, make_terms, make_user

#: When the world is built and every request made.
NOW = dt.datetime(2027, 3, 1, 2, tzinfo=dt.UTC)
#: An id that no object has.
UNKNOWN_ID = 2**31 - 1
#: The methods every route is tried with.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
SAFE = frozenset({"GET", "HEAD"})


def _walk(
    patterns: list[URLPattern | URLResolver], prefix: str = ""
) -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            # An unnamed pattern (the API's catch-all) goes by its full route.
            yield pattern.name or prefix + str(pattern.pattern), pattern


#: URL name (or, unnamed, full route) -> pattern, for every route of ``renewals.urls``.
ROUTES: dict[str, URLPattern] = dict(_walk(urls.urlpatterns))


class Whose(enum.Enum):
    OWN = "own"
    THEIRS = "another user's"
    UNKNOWN = "unknown"


@dataclass
class World:
    """Two users, each with a subscription of every kind the routes act on, a push device, a
    reminder of the first user's, and a receipt of a declaration of each statutory flow."""

    owner: User
    objects: dict[tuple[str, Whose], Any]
    notice: RenewalNotice
    receipts: dict[str, str] = field(default_factory=dict)

    def pk(self, kind: str, whose: Whose) -> int:
        """The id of the ``kind`` object (``subscription``, ``paused``, ``repriced``,
        ``contract``, ``withdrawable``, ``device``) of the owner, of the other user, or
        none's."""
        if whose is Whose.UNKNOWN:
            return UNKNOWN_ID
        pk: int = self.objects[kind, whose].pk
        return pk

    def own(self, kind: str) -> Any:
        return self.objects[kind, Whose.OWN]


def _objects_of(user: User) -> dict[str, Any]:
    label = user.get_username()
    device, _ = register_device(user, platform="ios", provider="apns", token=f"device-{label}")
    subscription = make_subscription(
        user,
        make_terms(service_name=f"Example Plus of {label}"),
        next_renewal_at=NOW + dt.timedelta(days=30),
    )
    record_consent(subscription, make_evidence(subscription.terms), actor=user)
    euro = {"currency": "EUR", "locale": "en"}
    return {
        "subscription": subscription,  # cn, auto-renewing, a reminder planned
        "paused": make_subscription(
            user, make_terms(service_name=f"Paused of {label}"), auto_renew=False
        ),
        "repriced": make_subscription(  # cn: a higher price from the next renewal, not agreed
            user,
            make_terms(service_name=f"Repriced of {label}"),
            upcoming_terms=make_terms(service_name=f"Repriced of {label}", amount="30.00"),
        ),
        "contract": make_subscription(  # de: the cancellation button
            user,
            make_terms(service_name=f"Streamo of {label}", **euro),
            policy="de",
            time_zone="Europe/Berlin",
        ),
        "withdrawable": make_subscription(  # eu, concluded now: inside its withdrawal period
            user,
            make_terms(service_name=f"Newsy of {label}", **euro),
            policy="eu",
            time_zone="Europe/Berlin",
        ),
        "device": device,
    }


def build_world() -> World:
    """Build the world; call it at :data:`NOW`."""
    owner = make_user("owner", email="owner@example.com", first_name="Olga")
    objects = {
        (kind, whose): obj
        for whose, user in ((Whose.OWN, owner), (Whose.THEIRS, make_user("stranger")))
        for kind, obj in _objects_of(user).items()
    }
    (notice,) = plan_notices(objects["subscription", Whose.OWN])
    world = World(owner, objects, notice)
    for flow, policy, kind in (
        ("cancel_contract", "de", DeclarationKind.ORDINARY),
        ("withdraw", "eu", DeclarationKind.WITHDRAWAL),
    ):
        statement = Statement(kind=kind, name="Olga", contract_number="0", email=owner.email)
        world.receipts[flow] = receipt_token(declare(policy, statement, declarant=None))
    return world


def state() -> dict[str, list[dict[str, Any]]]:
    """Every row a route could change."""
    watched: tuple[type[Model], ...] = (
        Subscription,
        Consent,
        AuditEvent,
        AuditCheckpoint,
        RenewalNotice,
        ContractDeclaration,
        Device,
        StripeEvent,
    )
    return {
        model.__name__: list(model._default_manager.order_by("pk").values()) for model in watched
    }


URL = Callable[[World, Whose], str]
Body = Callable[[World, Whose], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """How to call one route."""

    #: The methods it takes; any other answers ``refused_with``.
    methods: frozenset[str]
    url: URL
    #: The POST body of a request that acts (form fields, or JSON for the API).
    body: Body | None = None
    json: bool = False
    #: Whose objects ``url`` can name beside the owner's: another user's and an unknown one
    #: are each a 404.
    names: frozenset[Whose] = frozenset()
    refused_with: int = 405
    #: The headers that authenticate a POST of this (JSON) body in place of a session and its
    #: CSRF token, such as a webhook's signature; a POST without them answers 400.
    signature: Callable[[str], dict[str, str]] | None = None

    @property
    def unsafe_methods(self) -> list[str]:
        return sorted(self.methods - SAFE)

    def send(
        self,
        client: Client,
        method: str,
        world: World,
        whose: Whose = Whose.OWN,
        *,
        signed: bool = True,
    ) -> ClientResponse:
        """Make the request ``method`` for ``whose`` object, with the body if it is a POST,
        signed if the route takes a signature and ``signed``."""
        path = self.url(world, whose)
        if method == "POST" and self.body is not None:
            body = self.body(world, whose)
            if not self.json:
                return client.post(path, body)
            text = json.dumps(body)
            headers = self.signature(text) if self.signature and signed else {}
            return client.post(path, text, content_type="application/json", headers=headers)
        return client.generic(method, path)


def named(name: str, *args: str) -> URL:
    """The address of a route that names no object."""
    return lambda world, whose: reverse(f"renewals:{name}", args=args)


def by_id(name: str, kind: str) -> URL:
    """The address of a route whose ``pk`` names a ``kind`` object."""
    return lambda world, whose: reverse(f"renewals:{name}", args=[world.pk(kind, whose)])


def preselecting(name: str, policy: str, kind: str) -> URL:
    """A statutory confirmation page with a ``kind`` contract preselected."""
    return lambda world, whose: (
        f"{reverse(f'renewals:{name}', args=[policy])}?contract={world.pk(kind, whose)}"
    )


def receipt(name: str, flow: str) -> URL:
    """A receipt's address: the owner's declaration, or a signed id of none."""

    def url(world: World, whose: Whose) -> str:
        token = (
            signing.dumps(UNKNOWN_ID, salt=RECEIPT_SALT)
            if whose is Whose.UNKNOWN
            else world.receipts[flow]
        )
        return reverse(f"renewals:{name}", args=[token])

    return url


def declaration(kind: str) -> Body:
    """A complete statutory form choosing the ``kind`` contract."""
    return lambda world, whose: {
        "contract": world.pk(kind, whose),
        "name": "Olga",
        "email": world.owner.email,
        "phone": "",
        "kind": "ordinary",
        "reason": "",
        "ends": "earliest",
        "ends_on": "",
    }


def fresh_consent(kind: str) -> Body:
    """The manage page's consent form for the terms the owner's ``kind`` subscription renews
    at, ticked."""

    def body(world: World, whose: Whose) -> dict[str, Any]:
        subscription = world.own(kind)
        form = ConsentForm(
            terms=subscription.renewal_terms(),
            first_renewal_at=subscription.next_renewal_at,
            time_zone=subscription.time_zone,
            trial=False,
        )
        return {
            "auto_renew_consent": "yes",
            "disclosure_token": form["disclosure_token"].initial,
            "request_key": form["request_key"].initial,
        }

    return body


#: The signing secret of the Stripe webhook; the tests configure a Stripe gateway with it.
STRIPE_WEBHOOK_SECRET = "whsec_tests"


def stripe_signature(text: str) -> dict[str, str]:
    """The ``Stripe-Signature`` header Stripe sends with ``text``, now."""
    timestamp = int(NOW.timestamp())
    mac = hmac.new(STRIPE_WEBHOOK_SECRET.encode(), f"{timestamp}.{text}".encode(), "sha256")
    return {"Stripe-Signature": f"t={timestamp},v1={mac.hexdigest()}"}


def stripe_event(world: World, whose: Whose) -> dict[str, Any]:
    """An event of a type the package ignores: it is stored, and changes nothing else."""
    return {
        "id": "evt_tests",
        "type": "customer.created",
        "created": int(NOW.timestamp()),
        "data": {"object": {"id": "cus_tests", "object": "customer"}},
    }


def resume(world: World, whose: Whose) -> dict[str, Any]:
    return {
        "terms_hash": world.own("paused").renewal_terms().content_hash,
        "affirmative": True,
        "control_initially_unticked": True,
        "ui": {"screen": "tests.resume"},
    }


BY_ID = frozenset({Whose.THEIRS, Whose.UNKNOWN})
RECEIPT = frozenset({Whose.UNKNOWN})  # the token is the authority: nobody's is "another's"


def _statutory(flow: str, policy: str, kind: str) -> dict[str, Case]:
    return {
        flow: Case(SAFE, named(flow, policy)),
        f"{flow}_confirm": Case(
            SAFE | {"POST"},
            preselecting(f"{flow}_confirm", policy, kind),
            body=declaration(kind),
            names=BY_ID,
        ),
        f"{flow}_done": Case(SAFE, receipt(f"{flow}_done", flow), names=RECEIPT),
        f"{flow}_declaration": Case(SAFE, receipt(f"{flow}_declaration", flow), names=RECEIPT),
    }


#: Route key -> how to call it. Add an entry for every new route.
CASES: dict[str, Case] = {
    "api_subscriptions": Case(frozenset({"GET"}), named("api_subscriptions")),
    "api_subscription": Case(
        frozenset({"GET"}), by_id("api_subscription", "subscription"), names=BY_ID
    ),
    "api_auto_renew_off": Case(
        frozenset({"POST"}), by_id("api_auto_renew_off", "subscription"), names=BY_ID
    ),
    "api_auto_renew_on": Case(
        frozenset({"POST"}),
        by_id("api_auto_renew_on", "paused"),
        body=resume,
        json=True,
        names=BY_ID,
    ),
    "api_devices": Case(
        frozenset({"POST"}),
        named("api_devices"),
        body=lambda world, whose: {"platform": "android", "provider": "fcm", "token": "new"},
        json=True,
    ),
    "api_device": Case(frozenset({"DELETE"}), by_id("api_device", "device"), names=BY_ID),
    "api_openapi": Case(frozenset({"GET"}), named("api_openapi")),
    # The API's catch-all: any other address under it is a 404, whatever the method.
    "api/v1/": Case(frozenset(), lambda world, whose: "/api/v1/no-such-thing/", refused_with=404),
    "one_click_cancel": Case(
        SAFE | {"POST"},
        lambda world, whose: reverse(
            "renewals:one_click_cancel", args=[one_click_token(world.notice)]
        ),
    ),
    "manage": Case(frozenset({"GET"}), named("manage")),
    "auto_renew_off": Case(
        frozenset({"POST"}), by_id("auto_renew_off", "subscription"), names=BY_ID
    ),
    "auto_renew_on": Case(
        frozenset({"GET", "POST"}),
        by_id("auto_renew_on", "paused"),
        body=fresh_consent("paused"),
        names=BY_ID,
    ),
    "accept_new_terms": Case(
        frozenset({"GET", "POST"}),
        by_id("accept_new_terms", "repriced"),
        body=fresh_consent("repriced"),
        names=BY_ID,
    ),
    **_statutory("cancel_contract", "de", "contract"),
    **_statutory("withdraw", "eu", "withdrawable"),
    "stripe_webhook": Case(
        frozenset({"POST"}),
        named("stripe_webhook"),
        body=stripe_event,
        json=True,
        signature=stripe_signature,
    ),
}
