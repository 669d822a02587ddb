"""Property tests of the receipt webhook: whatever a provider (or anyone holding the token)
posts, the answer is an acknowledgement or 400, never 500."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_django import Settings

from .receipt_requests import RECEIPT_BACKENDS, TWILIO_URL, post_json, twilio_post

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.notifications.urls")]

#: Examples per property: each is a request through the whole view and the database.
EXAMPLES = 150
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(["", "\x00", "\ud800", "0001-01-01 00:00:00", "9" * 300, "SUCCESS"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


times = st.datetimes().map(lambda t: t.strftime("%Y-%m-%d %H:%M:%S")) | json_values


def report_like(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """A provider's report: its keys hold a value of their kind, or any JSON value, and the
    ``optional`` ones may be left out."""
    return st.fixed_dictionaries(
        {key: values | json_values for key, values in required.items()},
        optional={key: values | json_values for key, values in optional.items()},
    )


aliyun_reports = report_like(
    {"biz_id": st.text(), "success": st.booleans()},
    {"report_time": times, "err_code": st.text(), "err_msg": st.text()},
)
tencent_reports = report_like(
    {"sid": st.text(), "report_status": st.sampled_from(["SUCCESS", "FAIL"])},
    {"user_receive_time": times, "errmsg": st.text(), "description": st.text()},
)


@pytest.fixture(autouse=True)
def _backends(settings: Settings) -> None:
    settings.NOTIFICATIONS = {"BACKENDS": RECEIPT_BACKENDS}


@PROPERTY_SETTINGS
@given(alias=st.sampled_from(["ali", "tc"]), body=json_values)
def test_any_json_body_is_acknowledged_or_refused(alias: str, body: object) -> None:
    # Escaped as a provider's bytes would be: "\ud800" reaches the parser, not the client.
    assert post_json(Client(), alias, json.dumps(body)).status_code in (200, 400)


@PROPERTY_SETTINGS
@given(
    reports=st.one_of(
        st.tuples(st.just("ali"), st.lists(aliyun_reports, min_size=1, max_size=3)),
        st.tuples(st.just("tc"), st.lists(tencent_reports, min_size=1, max_size=3)),
    )
)
def test_any_batch_of_report_shaped_items_is_acknowledged_or_refused(
    reports: tuple[str, list[dict[str, Any]]],
) -> None:
    alias, items = reports
    assert post_json(Client(), alias, json.dumps(items)).status_code in (200, 400)


@PROPERTY_SETTINGS
@given(body=st.binary(max_size=200))
def test_any_bytes_are_acknowledged_or_refused(body: bytes) -> None:
    response = Client().post(
        "/notifications/receipts/ali/?token=s3cret-receipt-token",
        body,
        content_type="application/json",
    )
    assert response.status_code in (200, 400)


form_text = st.text(max_size=30) | st.sampled_from(["S" * 5000, "\x00", "delivered", "failed"])


@PROPERTY_SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(["MessageSid", "MessageStatus", "ErrorCode", "To", "AccountSid"])
        | st.text(string.ascii_letters, min_size=1, max_size=8),
        form_text,
        max_size=6,
    )
)
def test_any_signed_twilio_callback_is_acknowledged_or_refused(params: dict[str, str]) -> None:
    assert twilio_post(Client(), params).status_code in (204, 400)


@PROPERTY_SETTINGS
@given(
    body=st.binary(max_size=200),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"]
    ),
)
def test_any_unsigned_twilio_body_is_refused(body: bytes, content_type: str) -> None:
    assert Client().post(TWILIO_URL, body, content_type=content_type).status_code == 400
