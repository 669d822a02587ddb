"""The API's errors: one exception, one JSON shape, one code per kind of failure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

from django.http import JsonResponse
from django.utils.translation import gettext as _
from pydantic import BaseModel, Field


class ErrorCode(StrEnum):
    """What went wrong, for the client's code; the message says it for people."""

    MALFORMED_JSON = "malformed_json"
    NOT_AUTHENTICATED = "not_authenticated"
    PERMISSION_DENIED = "permission_denied"
    CSRF_FAILED = "csrf_failed"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    STALE_TERMS = "stale_terms"
    NOT_LIVE = "not_live"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    VALIDATION_ERROR = "validation_error"


#: Every error status the API answers, with what it means (the OpenAPI responses' text).
ERROR_STATUSES: Mapping[int, str] = {
    400: "The body is not valid JSON.",
    401: "No user is authenticated.",
    403: "The user may not use the API, or a session request failed its CSRF check.",
    404: "No such object among the user's own.",
    405: "The path does not take this method; the Allow header lists those it takes.",
    409: "The subscription's state or terms do not allow this; the error says which.",
    413: "The body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE.",
    415: "The body is not application/json.",
    422: "The body is JSON but not what the operation takes; details list each field at fault.",
}


class FieldError(BaseModel):
    """One field at fault in a request body."""

    loc: list[str | int] = Field(description="The path to the field, from the body's root.")
    message: str
    type: str = Field(description="The kind of error, such as 'missing' or 'string_too_long'.")


class ErrorBody(BaseModel):
    code: ErrorCode
    message: str = Field(description="What went wrong, in the request's language.")
    details: list[FieldError] = Field(default_factory=list)
    current_terms_hash: str | None = Field(
        default=None,
        description="Only with 'stale_terms': the hash of the terms to show and ask about now.",
    )


class ErrorResponse(BaseModel):
    """Every error the API answers has this shape."""

    error: ErrorBody


class ApiError(Exception):
    """An answer other than success; the dispatcher turns it into the JSON error shape."""

    def __init__(
        self,
        status: int,
        code: ErrorCode,
        message: str,
        *,
        details: Sequence[FieldError] = (),
        current_terms_hash: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorResponse(
            error=ErrorBody(
                code=code,
                message=message,
                details=list(details),
                current_terms_hash=current_terms_hash,
            )
        )
        self.headers = dict(headers or {})

    def response(self) -> JsonResponse:
        return JsonResponse(
            self.body.model_dump(mode="json", exclude_none=True),
            status=self.status,
            headers=self.headers,
        )


def not_found() -> ApiError:
    return ApiError(404, ErrorCode.NOT_FOUND, _("Not found."))


def method_not_allowed(allowed: Iterable[str]) -> ApiError:
    allow = ", ".join(allowed)
    return ApiError(
        405,
        ErrorCode.METHOD_NOT_ALLOWED,
        _("This address takes only these methods: %(allow)s.") % {"allow": allow},
        headers={"Allow": allow},
    )
