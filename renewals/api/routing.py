"""The route table's parts: each :class:`Route` both dispatches and documents its operations.

A handler takes ``(request, user, **path_params)``, plus ``body`` (the validated model) when
its operation takes one, and returns a :class:`Reply`. Everything else (the method, the user,
the body, every error's shape) is settled here, the same way for every route.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from pydantic import BaseModel, ValidationError

from .auth import authenticate
from .errors import ApiError, ErrorCode, FieldError, method_not_allowed

M = TypeVar("M", bound=BaseModel)

_PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Reply:
    status: int
    body: BaseModel | None = None

    def response(self) -> HttpResponse:
        if self.body is None:
            return HttpResponse(status=self.status)
        return JsonResponse(self.body.model_dump(mode="json"), status=self.status)


@dataclass(frozen=True)
class Operation:
    method: str
    handler: Callable[..., Reply]
    summary: str
    #: success status -> the body it answers, or None for no body
    responses: Mapping[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    #: error statuses beside those every operation of its kind can answer
    errors: tuple[int, ...] = ()

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


@dataclass(frozen=True)
class Route:
    pattern: str  # a django.urls.path() route, relative to the API's root
    name: str
    operations: tuple[Operation, ...]

    @property
    def parameters(self) -> list[tuple[str, str]]:
        """``(name, converter)`` of each path parameter, in order."""
        return [
            (match["name"], match["converter"] or "str")
            for match in _PARAMETER.finditer(self.pattern)
        ]

    @property
    def template(self) -> str:
        """The path as OpenAPI writes it: ``subscriptions/{pk}/``."""
        return _PARAMETER.sub(r"{\g<name>}", self.pattern)

    def error_statuses(self, operation: Operation) -> list[int]:
        """The error statuses ``operation`` can answer: what the dispatcher checks, and the
        operation's own."""
        statuses = {401, 403, *operation.errors}
        if self.parameters:
            statuses.add(404)
        if operation.body is not None:
            statuses |= {400, 413, 415, 422}
        return sorted(statuses)

    def urlpattern(self) -> URLPattern:
        return path(self.pattern, csrf_exempt(self.dispatch), name=self.name)

    def dispatch(self, request: HttpRequest, **params: Any) -> HttpResponse:
        """The view: find the operation, authenticate, validate the body, run the handler."""
        methods = [op.method for op in self.operations]
        try:
            if request.method not in methods:
                raise method_not_allowed(methods)
            operation = self.operations[methods.index(request.method)]
            user = authenticate(request)
            if operation.body is not None:
                params["body"] = parse_body(request, operation.body)
            reply = operation.handler(request, user, **params)
        except ApiError as error:
            return error.response()
        return reply.response()


def parse_body(request: HttpRequest, model: type[M]) -> M:
    """The JSON body validated as ``model``; 415, 413, 400 or 422 if it is not one."""
    if request.content_type != "application/json":
        raise ApiError(
            415,
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            _("Send the body as JSON, with Content-Type: application/json."),
        )
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(
            413, ErrorCode.PAYLOAD_TOO_LARGE, _("The request body is too large.")
        ) from None
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise ApiError(
                400, ErrorCode.MALFORMED_JSON, _("The request body is not valid JSON.")
            ) from None
        raise ApiError(
            422,
            ErrorCode.VALIDATION_ERROR,
            _("The request body is not valid."),
            details=[
                FieldError(loc=list(error["loc"]), message=error["msg"], type=error["type"])
                for error in errors
            ],
        ) from None
