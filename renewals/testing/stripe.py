"""A fake Stripe API for tests of a site that bills through the Stripe gateway (and for the
package's own tests and benchmarks): the real ``stripe`` SDK code path, and no network.

:class:`FakeStripe` is a :class:`stripe.HTTPClient`. The SDK builds each request as it would
for ``api.stripe.com`` (URL, form body, headers, idempotency key, retries) and hands it to the
fake, which records it and answers from routes the test registered (``settings`` is
pytest-django's fixture)::

    fake = FakeStripe.install(settings)  # RENEWALS["GATEWAY"]: a StripeGateway over the fake
    fake.on("POST", "/v1/subscriptions/sub_1", subscription("sub_1", cancel_at_period_end=True))
    get_gateway().set_auto_renew(subscription, False)
    [request] = fake.requests
    assert request.form["cancel_at_period_end"] == "true"
    assert request.idempotency_key == "renewals:test:..."

Routes
    ``fake.on(method, path, *replies, status=200)`` answers ``method`` on ``path`` (exact, no
    query string; the latest registration for a route wins). Each reply is a JSON object
    (served with ``status``), a :class:`Reply` (its own status and headers), a callable taking
    the :class:`Request` and returning either of those, or an exception to raise (e.g.
    ``stripe.APIConnectionError("down", should_retry=True)``). Several replies are served in
    turn and the last one repeats, so ``on(..., Reply(503, error("busy")), ok)`` fails once and
    then succeeds. A request with no route fails the test with an :class:`AssertionError`.
    :func:`paged` answers list requests with Stripe's ``limit``/``starting_after`` paging.

Records
    ``fake.requests`` holds every :class:`Request` in order (retries included): ``method``
    (upper case), ``path``, ``query`` and ``form`` (decoded to flat dicts with Stripe's bracket
    keys, e.g. ``form["metadata[consent_id]"]``), ``idempotency_key`` and all ``headers``.
    :meth:`FakeStripe.calls` lists them as ``"METHOD path"`` strings.

Idempotency
    As Stripe does, a request repeating the ``Idempotency-Key`` of one answered with a 2xx
    gets that answer again (with ``Idempotent-Replayed: true``), whatever the routes say now;
    with other parameters, a 400 ``idempotency_error``. Both are recorded like any request.

Objects
    :func:`subscription`, :func:`invoice`, :func:`price`, :func:`customer`,
    :func:`checkout_session` and :func:`event` build objects in the current API shapes (the
    JSON files in ``stripe_fixtures/``), with the values tests depend on as arguments and any
    other top-level field as a keyword; times are aware datetimes or Unix seconds.
    :func:`listing` wraps objects in a list object, :func:`error` builds an error body.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe

API_KEY = "sk_test_fake"
WEBHOOK_SECRET = "whsec_test_fake"
IDEMPOTENCY_PREFIX = "test"
FIXTURES = Path(__file__).with_name("stripe_fixtures")

Timestamp = dt.datetime | int | None


@dataclass(frozen=True)
class Request:
    """One request the SDK sent."""

    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("Idempotency-Key")


@dataclass(frozen=True)
class Reply:
    """A response with a status other than the route's, or with headers."""

    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


Responder = Mapping[str, Any] | Reply | Callable[[Request], Mapping[str, Any] | Reply]
ReplySpec = Responder | BaseException


class FakeStripe(stripe.HTTPClient):
    """Answers the SDK from registered routes and records every request (see the module)."""

    name = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []
        self._routes: dict[tuple[str, str], tuple[list[ReplySpec], int]] = {}
        self._answered: dict[str, tuple[Request, Reply]] = {}  # by idempotency key

    @classmethod
    def install(cls, settings: Any, **options: Any) -> FakeStripe:
        """Make ``RENEWALS["GATEWAY"]`` a ``StripeGateway`` over a new fake and return the fake.

        ``options`` add to or replace the gateway's OPTIONS (``api_key``, ``webhook_secret`` and
        ``idempotency_prefix`` default to :data:`API_KEY`, :data:`WEBHOOK_SECRET` and
        :data:`IDEMPOTENCY_PREFIX`); the other ``RENEWALS`` settings stay as they are.
        """
        fake = cls()
        settings.RENEWALS = {
            **settings.RENEWALS,
            "GATEWAY": {
                "BACKEND": "renewals.gateways.stripe.StripeGateway",
                "OPTIONS": {
                    "api_key": API_KEY,
                    "webhook_secret": WEBHOOK_SECRET,
                    "idempotency_prefix": IDEMPOTENCY_PREFIX,
                    "http_client": fake,
                    **options,
                },
            },
        }
        return fake

    def on(self, method: str, path: str, *replies: ReplySpec, status: int = 200) -> None:
        """Answer ``method`` on ``path`` with ``replies`` in turn (the last one repeats)."""
        if not replies:
            raise TypeError("on() needs at least one reply.")
        self._routes[method.upper(), path] = (list(replies), status)

    def calls(self) -> list[str]:
        """Every request so far as ``"METHOD path"``."""
        return [f"{request.method} {request.path}" for request in self.requests]

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        parts = urlsplit(url)
        body = post_data.decode() if isinstance(post_data, bytes) else post_data or ""
        request = Request(
            method=method.upper(),
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            form=dict(parse_qsl(body, keep_blank_values=True)),
            headers=dict(headers or {}),
        )
        self.requests.append(request)
        key = request.idempotency_key
        if key in self._answered:
            return self._replay(request, *self._answered[key])
        route = self._routes.get((request.method, request.path))
        if route is None:
            raise AssertionError(f"FakeStripe has no route for {request.method} {request.path}.")
        replies, status = route
        spec = replies.pop(0) if len(replies) > 1 else replies[0]
        if isinstance(spec, BaseException):
            raise spec
        reply = spec(request) if callable(spec) else spec
        if not isinstance(reply, Reply):
            reply = Reply(status, reply)
        if key is not None and 200 <= reply.status < 300:
            self._answered[key] = (request, reply)
        headers_out = {"request-id": f"req_fake_{len(self.requests)}", **reply.headers}
        return json.dumps(reply.body), reply.status, headers_out

    def _replay(
        self, request: Request, first: Request, reply: Reply
    ) -> tuple[str, int, Mapping[str, str]]:
        """Stripe's answer to a key used before: the first answer, or an error if the
        request differs from the first."""
        if (request.method, request.path, request.form) != (first.method, first.path, first.form):
            reply = Reply(
                400,
                error(
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                    type="idempotency_error",
                ),
            )
        else:
            reply = Reply(
                reply.status, reply.body, {**reply.headers, "Idempotent-Replayed": "true"}
            )
        headers_out = {"request-id": f"req_fake_{len(self.requests)}", **reply.headers}
        return json.dumps(reply.body), reply.status, headers_out

    def request_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("FakeStripe does not stream.")

    def close(self) -> None:
        pass

    def _sleep_time_seconds(self, num_retries: int) -> float:
        return 0.0


def paged(objects: Sequence[Mapping[str, Any]], url: str) -> Callable[[Request], dict[str, Any]]:
    """A responder for a list endpoint over ``objects`` (newest first, as Stripe lists),
    honouring ``limit`` (default 10) and ``starting_after``."""

    def respond(request: Request) -> dict[str, Any]:
        limit = int(request.query.get("limit", 10))
        start = 0
        if after := request.query.get("starting_after"):
            ids = [obj["id"] for obj in objects]
            assert after in ids, f"starting_after={after} names no listed object"
            start = ids.index(after) + 1
        page = objects[start : start + limit]
        return listing(page, url, has_more=start + limit < len(objects))

    return respond


def listing(
    objects: Iterable[Mapping[str, Any]], url: str, *, has_more: bool = False
) -> dict[str, Any]:
    """A Stripe list object."""
    return {"object": "list", "data": list(objects), "has_more": has_more, "url": url}


def error(
    message: str, *, type: str = "invalid_request_error", code: str | None = None
) -> dict[str, Any]:
    """A Stripe error body (serve it with a 4xx or 5xx status)."""
    return {"error": {"type": type, "message": message, "code": code}}


def price(
    id: str = "price_1",
    *,
    unit_amount: int = 2000,
    currency: str = "usd",
    interval: str = "month",
    interval_count: int = 1,
    product: str | Mapping[str, Any] = "prod_1",
    **fields: Any,
) -> dict[str, Any]:
    """A recurring price; ``product`` an id, or the product when expanded."""
    obj = _fixture("price")
    obj["recurring"].update(interval=interval, interval_count=interval_count)
    return {
        **obj,
        "id": id,
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
        "currency": currency,
        "product": product,
        **fields,
    }


def subscription(
    id: str = "sub_1",
    *,
    customer: str | Mapping[str, Any] = "cus_1",
    status: str = "active",
    period_start: Timestamp = 1767225600,
    period_end: Timestamp = 1769904000,
    item_price: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A subscription with one item, whose period is ``period_start`` to ``period_end``
    (the current API keeps the period on the items only); ``customer`` an id, or the
    customer when expanded."""
    obj = _fixture("subscription")
    item_price = dict(item_price or price())
    [item] = obj["items"]["data"]
    item.update(
        subscription=id,
        price=item_price,
        current_period_start=_seconds(period_start),
        current_period_end=_seconds(period_end),
    )
    item["plan"].update(
        id=item_price["id"],
        amount=item_price["unit_amount"],
        amount_decimal=str(item_price["unit_amount"]),
        currency=item_price["currency"],
        product=item_price["product"],
        **{key: item_price["recurring"][key] for key in ("interval", "interval_count")},
    )
    obj["items"]["url"] = f"/v1/subscription_items?subscription={id}"
    return {
        **obj,
        "id": id,
        "customer": customer,
        "status": status,
        "currency": item_price["currency"],
        "metadata": dict(metadata or {}),
        **_with_seconds(fields),
    }


def invoice(
    id: str = "in_1",
    *,
    subscription: str = "sub_1",
    status: str = "draft",
    billing_reason: str = "subscription_cycle",
    auto_advance: bool = True,
    **fields: Any,
) -> dict[str, Any]:
    """An invoice of ``subscription`` (under ``parent.subscription_details``, where the
    current API keeps it)."""
    obj = _fixture("invoice")
    obj["parent"]["subscription_details"]["subscription"] = subscription
    for line in obj["lines"]["data"]:
        line["invoice"] = id
        line["parent"]["subscription_item_details"]["subscription"] = subscription
    obj["lines"]["url"] = f"/v1/invoices/{id}/lines"
    return {
        **obj,
        "id": id,
        "status": status,
        "billing_reason": billing_reason,
        "auto_advance": auto_advance,
        **_with_seconds(fields),
    }


def customer(id: str = "cus_1", **fields: Any) -> dict[str, Any]:
    """A customer."""
    return {**_fixture("customer"), "id": id, **_with_seconds(fields)}


def checkout_session(
    id: str = "cs_test_1", *, url: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A Checkout Session in subscription mode."""
    url = url or f"https://checkout.stripe.com/c/pay/{id}"
    return {**_fixture("checkout_session"), "id": id, "url": url, **_with_seconds(fields)}


def event(
    type: str,
    obj: Mapping[str, Any],
    *,
    id: str = "evt_1",
    created: Timestamp = 1767225600,
    previous_attributes: Mapping[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """An event of ``type`` about ``obj``, in the API version the SDK pins."""
    data: dict[str, Any] = {"object": dict(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = dict(previous_attributes)
    return {
        **_fixture("event"),
        "id": id,
        "type": type,
        "created": _seconds(created),
        "api_version": stripe.api_version,
        "data": data,
        **_with_seconds(fields),
    }


def _with_seconds(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _seconds(value) for key, value in fields.items()}


def _seconds(value: Any) -> Any:
    """Unix seconds for a datetime; anything else as it is."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp())
    return value


def _fixture(name: str) -> dict[str, Any]:
    return copy.deepcopy(_loaded(name))


@cache
def _loaded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data
