"""The OpenAPI 3.1 document, generated from the route table and the pydantic models in it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any, Literal

from django.http import HttpRequest, JsonResponse
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaValue, models_json_schema

from .errors import ERROR_STATUSES, ErrorResponse, method_not_allowed
from .routing import Operation, Route
from .views import ROUTES

Mode = Literal["validation", "serialization"]
Ref = Callable[[type[BaseModel], Mode], JsonSchemaValue]
JSON = "application/json"

#: What each django.urls path converter the routes use matches, as JSON Schema.
_CONVERTERS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": 0},
    "str": {"type": "string", "pattern": "^[^/]+$"},
}

_INTRO = """\
The subscriptions of the authenticated user, switching their auto-renewal off and on, and
the user's push devices. Authentication is the host site's (RENEWALS["API_AUTHENTICATION"]);
requests that a session authenticates pass Django's CSRF check to change anything. Every
error has the ErrorResponse shape:
"""


def openapi_document(request: HttpRequest) -> JsonResponse:
    """The document, its server being the address this view is mounted under."""
    if request.method != "GET":
        return method_not_allowed(["GET"]).response()
    return JsonResponse(build_document(request.path.rpartition("/")[0]))


@functools.cache
def build_document(server_url: str) -> dict[str, Any]:
    refs, definitions = models_json_schema(
        list(dict.fromkeys(_models())), ref_template="#/components/schemas/{model}"
    )

    def ref(model: type[BaseModel], mode: Mode) -> JsonSchemaValue:
        return refs[(model, mode)]

    errors = "".join(f"- {status}: {text}\n" for status, text in ERROR_STATUSES.items())
    return {
        "openapi": "3.1.0",
        "info": {"title": "django-renewals", "version": "1", "description": _INTRO + errors},
        "servers": [{"url": server_url}],
        "paths": {
            f"/{route.template}": {
                operation.method.lower(): _operation(route, operation, ref)
                for operation in route.operations
            }
            for route in ROUTES
        },
        "components": {"schemas": definitions.get("$defs", {})},
    }


def _models() -> Iterator[tuple[type[BaseModel], Mode]]:
    yield ErrorResponse, "serialization"
    for route in ROUTES:
        for operation in route.operations:
            if operation.body is not None:
                yield operation.body, "validation"
            for model in operation.responses.values():
                if model is not None:
                    yield model, "serialization"


def _operation(route: Route, operation: Operation, ref: Ref) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "description": inspect.getdoc(operation.handler),
        "tags": [route.pattern.partition("/")[0]],
    }
    if route.parameters:
        document["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": _CONVERTERS[converter]}
            for name, converter in route.parameters
        ]
    if operation.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": ref(operation.body, "validation")}},
        }
    responses: dict[str, Any] = {}
    for status, model in operation.responses.items():
        responses[str(status)] = {"description": HTTPStatus(status).phrase}
        if model is not None:
            responses[str(status)]["content"] = {JSON: {"schema": ref(model, "serialization")}}
    for status in route.error_statuses(operation):
        responses[str(status)] = {
            "description": ERROR_STATUSES[status],
            "content": {JSON: {"schema": ref(ErrorResponse, "serialization")}},
        }
    document["responses"] = responses
    return document
