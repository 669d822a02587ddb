"""Keeping the receipt token out of what reports a request: Django's error reports, and logs.

The Chinese SMS providers push receipts to a URL that ends with ``?token=<receipt_token>``.
The receipt view masks the token in the request once it has read it
(:func:`hide_receipt_token`), so whatever reports that request afterwards (Django's error
e-mails, an error tracker, the ``django.request`` log) shows ``********``. For an error that
happens before the view runs (a middleware that fails), set ``DEFAULT_EXCEPTION_REPORTER`` to
:class:`TokenMaskingExceptionReporter`; for access logs, add :class:`TokenMaskingLogFilter` to
the handlers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, QueryDict
from django.views.debug import ExceptionReporter

#: The query parameter that carries the receipt token.
TOKEN_PARAMETER = "token"
#: What stands for the token wherever it is masked.
MASK = "********"
#: ``token=<value>`` at the start of a query string or after ``?``, ``&`` or ``;``.
_TOKEN_VALUE = re.compile(rf"(?<![^?&;]){TOKEN_PARAMETER}=[^&;#\s\"'<>]*")


def mask_receipt_token(text: str) -> str:
    """``text`` (a URL, a query string, a log line) with the token's value masked."""
    return _TOKEN_VALUE.sub(f"{TOKEN_PARAMETER}={MASK}", text)


def hide_receipt_token(request: HttpRequest) -> None:
    """Mask the token in ``request`` itself: in its query string, in ``GET`` and in every
    ``META`` value that repeats the URL (``REQUEST_URI``, ``RAW_URI``…)."""
    query = request.META.get("QUERY_STRING", "")
    if mask_receipt_token(query) == query:
        return
    for key, value in request.META.items():
        if isinstance(value, str):
            request.META[key] = mask_receipt_token(value)
    try:
        request.GET = QueryDict(request.META["QUERY_STRING"], encoding=request.encoding)
    except SuspiciousOperation:  # more fields than Django reads: GET shows none
        request.GET = QueryDict(encoding=request.encoding)


class TokenMaskingExceptionReporter(ExceptionReporter):
    """Django's error report (``DEFAULT_EXCEPTION_REPORTER``) with the token masked in the
    request URL, the GET parameters, ``META``, the exception's text and the frames' local
    variables."""

    def get_traceback_data(self) -> dict[str, Any]:
        data: dict[str, Any] = super().get_traceback_data()
        # A string up to Django 6.0, the exception itself from 6.1 on.
        for key in ("exception_value", "exception_notes"):
            if data.get(key) is not None:
                data[key] = mask_receipt_token(str(data[key]))
        if "request_insecure_uri" in data:
            data["request_insecure_uri"] = mask_receipt_token(data["request_insecure_uri"])
            data["request_GET_items"] = [
                (name, MASK if name == TOKEN_PARAMETER else value)
                for name, value in data["request_GET_items"]
            ]
        data["request_meta"] = {
            key: mask_receipt_token(value) if isinstance(value, str) else value
            for key, value in data["request_meta"].items()
        }
        for frame in data["frames"]:
            frame["vars"] = [(name, _masked(value)) for name, value in frame.get("vars", [])]
        return data


class TokenMaskingLogFilter(logging.Filter):
    """A logging filter that masks the token in a record's message and arguments (a request
    line of ``runserver``'s ``django.server`` log, gunicorn's ``gunicorn.access`` atoms)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_receipt_token(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {key: _masked(value) for key, value in record.args.items()}
        elif record.args:
            record.args = tuple(_masked(arg) for arg in record.args)
        return True


def _masked(value: object) -> object:
    return mask_receipt_token(value) if isinstance(value, str) else value
