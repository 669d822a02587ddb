"""The JSON API fuzzed from its own OpenAPI document: no 5xx, every answer as documented.

Each operation gets schema-valid and schema-invalid requests from schemathesis, made through
the WSGI application with the owner's token. Path ids and terms hashes are drawn now and then
from the owner's real subscriptions and device (the one worth acting on first), and their
state is restored before each request, so the operations get past 404 and 409 too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_django import Settings
from schemathesis import GenerationMode

from notifications.devices import register_device
from notifications.models import Device
from renewals.api.schemas import Platform
from renewals.api.views import ROUTES
from renewals.models import RenewalTerms, Subscription
from renewals.types import User

from .api_auth import token_for
from .factories import make_subscription, make_terms, make_user

# The app's requests run through the WSGI handler and commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

#: Per operation and mode; the whole module takes a few seconds.
EXAMPLES = 30

#: (method, path, mode): every operation with valid requests, and with invalid ones where it
#: takes anything that can be invalid (a path parameter or a body).
CASES = [
    (operation.method, f"/{route.template}", mode)
    for route in ROUTES
    for operation in route.operations
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or route.parameters or operation.body
]


@dataclass
class World:
    terms: RenewalTerms
    on: Subscription  # the owner's, auto-renewing
    off: Subscription  # the owner's, auto-renewal off
    theirs: Subscription  # another user's
    device: Device  # the owner's

    def ids_for(self, path: str) -> list[int]:
        """The real ids worth putting in ``path``, the likeliest to change something first."""
        if path.startswith("/devices/"):
            return [self.device.pk]
        first, second = (self.off, self.on) if path.endswith("/on/") else (self.on, self.off)
        return [first.pk, second.pk, self.theirs.pk]

    def restore(self) -> None:
        Subscription.objects.filter(pk=self.on.pk).update(auto_renew=True)
        Subscription.objects.filter(pk=self.off.pk).update(auto_renew=False)
        Device.objects.filter(pk=self.device.pk).update(active=True)


@pytest.fixture
def owner(settings: Settings) -> User:
    settings.RENEWALS = {
        **settings.RENEWALS,
        "API_AUTHENTICATION": "tests.renewals.api_auth.bearer_token",
    }
    return make_user()


@pytest.fixture
def world(owner: User) -> World:
    terms = make_terms()
    device, _ = register_device(owner, platform=Platform.IOS, provider="apns", token="a" * 64)
    return World(
        terms=terms,
        on=make_subscription(owner, terms),
        off=make_subscription(owner, terms, auto_renew=False),
        theirs=make_subscription(make_user(), terms),
        device=device,
    )


@pytest.fixture
def api_schema(world: World) -> Any:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
        if not path_parameters or "pk" not in path_parameters:
            return st.just(path_parameters)
        choices = [*world.ids_for(context.operation.path), path_parameters["pk"]]
        return st.sampled_from(choices).map(lambda pk: {**path_parameters, "pk": pk})

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        if not isinstance(body, dict) or "terms_hash" not in body:
            return st.just(body)
        return st.sampled_from([{**body, "terms_hash": world.terms.content_hash}, body])

    return schema


@pytest.mark.parametrize(("method", "path", "mode"), CASES, ids=[" ".join(c) for c in CASES])
def test_api_answers_as_documented(
    api_schema: Any, world: World, owner: User, method: str, path: str, mode: GenerationMode
) -> None:
    headers = {"Authorization": f"Bearer {token_for(owner)}"}

    @given(case=api_schema[path][method].as_strategy(mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    def answers_as_documented(case: Any) -> None:
        world.restore()
        case.call_and_validate(headers=headers)

    answers_as_documented()
