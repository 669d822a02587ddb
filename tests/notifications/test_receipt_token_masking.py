"""The receipt token of a ``?token=`` URL appears in no error report and no log record."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.utils.module_loading import import_string
from django.views.debug import ExceptionReporter
from pytest_django import Settings

from notifications.backends import get_backend
from notifications.backends.aliyun import AliyunSMSBackend
from notifications.webhooks import views
from notifications.webhooks.redaction import (
    TokenMaskingExceptionReporter,
    TokenMaskingLogFilter,
    mask_receipt_token,
)

from .receipt_requests import RECEIPT_BACKENDS, RECEIPT_TOKEN, aliyun_report, post_json

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.notifications.urls")]

RECEIPT_URL = f"/notifications/receipts/ali/?token={RECEIPT_TOKEN}"


@pytest.fixture(autouse=True)
def _backends(settings: Settings) -> None:
    settings.NOTIFICATIONS = {"BACKENDS": RECEIPT_BACKENDS}
    settings.ADMINS = [("Ops", "ops@example.com")]


def failing_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Any:
    """A middleware that fails before any view runs (its database is down, say)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("the database went away")

    return middleware


def reported(request: HttpRequest, reporter: type[ExceptionReporter]) -> str:
    """The text and HTML reports of an error raised with ``request`` and its URL in scope."""
    url = request.get_full_path()
    try:
        raise RuntimeError(f"failed at {url}")
    except RuntimeError:
        report = reporter(request, *sys.exc_info())
    return report.get_traceback_text() + report.get_traceback_html()


def failing_apply(**kwargs: object) -> None:
    raise RuntimeError("database went away")


def test_the_error_mail_of_a_failing_receipt_shows_no_token(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "apply_receipt", failing_apply)
    response = post_json(client, "ali", [aliyun_report("1^0", True, "")])
    assert response.status_code == 500
    (report,) = mail.outbox
    assert RECEIPT_TOKEN not in f"{report.subject} {report.body}"
    assert f"/notifications/receipts/ali/?token={'*' * 8}" in report.body
    # Any later report of that request, HTML with local variables included, shows none.
    assert RECEIPT_TOKEN not in reported(response.wsgi_request, ExceptionReporter)


def test_the_exception_reporter_masks_a_request_no_view_has_seen(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = RequestFactory().post(RECEIPT_URL + "&x=1", REQUEST_URI=RECEIPT_URL)
    assert RECEIPT_TOKEN in reported(request, ExceptionReporter)
    text = reported(request, TokenMaskingExceptionReporter)
    assert RECEIPT_TOKEN not in text
    assert "token=********&amp;x=1" in text

    # A middleware fails before the receipt view: the setting masks Django's error e-mail.
    settings.MIDDLEWARE = [f"{__name__}.failing_middleware"]
    settings.DEFAULT_EXCEPTION_REPORTER = (
        "notifications.webhooks.redaction.TokenMaskingExceptionReporter"
    )
    # AdminEmailHandler reads the setting when logging is configured, at start-up.
    (mail_admins,) = [h for h in logging.getLogger("django").handlers if h.name == "mail_admins"]
    monkeypatch.setattr(
        mail_admins, "reporter_class", import_string(settings.DEFAULT_EXCEPTION_REPORTER)
    )
    failing = Client(raise_request_exception=False)
    assert failing.post(RECEIPT_URL, "[]", content_type="application/json").status_code == 500
    (mailed,) = mail.outbox
    assert "the database went away" in mailed.body
    assert RECEIPT_TOKEN not in f"{mailed.subject} {mailed.body}"


def test_the_token_read_by_a_backend_is_kept_out_of_the_frames_of_a_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: object, item: object) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(AliyunSMSBackend, "receipt_from_item", broken)
    request = RequestFactory().post(
        "/notifications/receipts/ali/",
        "[{}]",
        content_type="application/json",
        HTTP_X_RECEIPT_TOKEN=RECEIPT_TOKEN,
    )
    with pytest.raises(RuntimeError) as raised:
        get_backend("ali").parse_receipts(request)  # type: ignore[attr-defined]
    report = ExceptionReporter(request, raised.type, raised.value, raised.tb).get_traceback_html()
    assert "parse_receipts" in report
    assert RECEIPT_TOKEN not in report


def test_the_header_token_is_cleansed_from_reports() -> None:
    request = RequestFactory().post("/notifications/receipts/ali/", HTTP_X_RECEIPT_TOKEN="s3c")
    assert "HTTP_X_RECEIPT_TOKEN = '********************'" in reported(request, ExceptionReporter)


def test_no_log_record_holds_the_token(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    post_json(client, "ali", [aliyun_report("1^0", True, "")])  # 200
    post_json(client, "ali", "[{not json")  # 400
    post_json(client, "nope", [])  # 404
    client.get(RECEIPT_URL)  # 405
    monkeypatch.setattr(views, "apply_receipt", failing_apply)
    assert post_json(client, "ali", [aliyun_report("1^0", True, "")]).status_code == 500
    assert {record.levelname for record in caplog.records} >= {"INFO", "WARNING", "ERROR"}
    assert RECEIPT_TOKEN not in caplog.text
    for record in caplog.records:
        request = getattr(record, "request", None)
        shown = [record.getMessage(), repr(record.args)]
        if request is not None:
            shown += [repr(request), request.get_full_path(), str(request.GET)]
        assert not any(RECEIPT_TOKEN in text for text in shown), record


def test_a_query_with_more_fields_than_django_reads_is_refused_and_masked(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    fields = "&".join(f"f{n}=1" for n in range(1001))
    response = client.post(f"{RECEIPT_URL}&{fields}", "[]", content_type="application/json")
    assert response.status_code == 400
    assert RECEIPT_TOKEN not in caplog.text
    assert RECEIPT_TOKEN not in repr(response.wsgi_request)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("token=abc", "token=********"),
        ("/r/ali/?token=abc&x=1", "/r/ali/?token=********&x=1"),
        ("/r/ali/?x=1;token=abc#f", "/r/ali/?x=1;token=********#f"),
        ('"POST /r/?token=a%2Fb HTTP/1.1" 200', '"POST /r/?token=******** HTTP/1.1" 200'),
        ("/r/?mytoken=abc", "/r/?mytoken=abc"),
    ],
)
def test_mask_token(text: str, masked: str) -> None:
    assert mask_receipt_token(text) == masked


@pytest.mark.parametrize(
    ("message", "args"),
    [
        ('"%s" %s %s', ("POST /r/ali/?token=s3c HTTP/1.1", "200", "17")),  # runserver
        ("%(r)s %(s)s", {"r": "POST /r/ali/?token=s3c HTTP/1.1", "s": "200"}),  # gunicorn
        ("POST /r/ali/?token=s3c", ()),
    ],
)
def test_the_log_filter_masks_the_token(message: str, args: Any) -> None:
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, message, args, None)
    assert TokenMaskingLogFilter().filter(record)
    assert "s3c" not in record.getMessage()
    assert "token=********" in record.getMessage()
