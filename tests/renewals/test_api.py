"""The JSON API: every route, its errors in one shape, session and token authentication."""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from freezegun import freeze_time
from pytest_django import Settings

from notifications.devices import register_device
from notifications.models import Device
from renewals.api.errors import ErrorResponse
from renewals.api.schemas import ResumeRequest
from renewals.api.views import ROUTES
from renewals.models import AuditEvent, Consent, NoticeStatus, Status, Subscription
from renewals.services import cancel_auto_renewal, subscribe
from renewals.types import User

from .api_auth import token_for
from .factories import make_evidence, make_subscription, make_terms, make_user

pytestmark = pytest.mark.django_db

TOKEN_OR_SESSION = "tests.renewals.api_auth.token_or_session"


@pytest.fixture(autouse=True)
def authentication(settings: Settings) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "API_AUTHENTICATION": TOKEN_OR_SESSION}


@pytest.fixture
def api(user: User) -> Client:
    """A client of the user's app: a bearer token, no session."""
    return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")


def url(name: str, **kwargs: Any) -> str:
    return reverse(f"renewals:{name}", kwargs=kwargs)


def post_json(client: Client, path: str, body: Any, **extra: Any) -> Any:
    return client.post(path, json.dumps(body), content_type="application/json", **extra)


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    """The error body, after checking the status, the code and the one shape."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    ErrorResponse.model_validate_json(response.content)
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


def resume_body(subscription: Any, **overrides: Any) -> dict[str, Any]:
    return {
        "terms_hash": subscription.terms.content_hash,
        "affirmative": True,
        "control_initially_unticked": True,
        "ui": {"screen": "settings.subscription.resume", "app_version": "3.2.1"},
        "locale": "zh-Hans",
        **overrides,
    }


# Reading subscriptions


def test_list_shows_the_users_subscriptions_in_their_zone(
    api: Client, user: User, subscription: Subscription
) -> None:
    make_subscription()  # another user's

    response = api.get(url("api_subscriptions"))

    assert response.status_code == 200
    [item] = response.json()["subscriptions"]
    assert item["id"] == subscription.pk
    assert item["service_name"] == "Example Plus"
    assert item["status"] == "active"
    assert (item["amount"], item["currency"]) == ("25.00", "CNY")
    assert (item["interval"], item["interval_count"]) == ("month", 1)
    assert item["time_zone"] == "Asia/Shanghai"
    assert item["next_renewal_at"] == "2027-03-10T09:00:00+08:00"
    assert item["consent_given_at"] == "2027-02-10T09:00:00+08:00"
    assert item["auto_renew"] is True
    assert item["terms_hash"] == subscription.terms.content_hash
    notices = subscription.notices.all()
    assert [n["rule"] for n in item["notices"]] == [n.rule_id for n in notices]
    first = item["notices"][0]
    assert first["status"] == "planned"
    assert first["send_at"].endswith("+08:00")
    assert first["channels"] == notices[0].channels
    assert first["given_at"] is None


def test_a_subscription_reads_as_in_the_list(api: Client, subscription: Subscription) -> None:
    listed = api.get(url("api_subscriptions")).json()["subscriptions"][0]

    response = api.get(url("api_subscription", pk=subscription.pk))

    assert response.status_code == 200
    assert response.json() == listed


def test_listing_takes_the_same_queries_however_many_subscriptions(
    api: Client, user: User, subscription: Subscription
) -> None:
    with CaptureQueriesContext(connection) as one:
        api.get(url("api_subscriptions"))
    for service in ("Music", "Video", "Cloud"):
        terms = make_terms(service_name=service)
        subscribe(user, terms, make_evidence(terms), time_zone="Europe/Berlin")

    with CaptureQueriesContext(connection) as four:
        response = api.get(url("api_subscriptions"))

    assert len(response.json()["subscriptions"]) == 4
    assert len(four) == len(one)


def test_withdrawn_notices_and_revoked_consent_are_left_out(
    api: Client, user: User, subscription: Subscription
) -> None:
    cancel_auto_renewal(subscription, actor=user, via="manage_page")

    item = api.get(url("api_subscription", pk=subscription.pk)).json()

    assert subscription.notices.filter(status=NoticeStatus.WITHDRAWN).exists()
    assert item["notices"] == []
    assert item["consent_given_at"] is None


def test_another_users_subscription_is_not_found_like_a_missing_one(api: Client) -> None:
    other = make_subscription()

    theirs = api.get(url("api_subscription", pk=other.pk))
    missing = api.get(url("api_subscription", pk=other.pk + 1000))

    error_of(theirs, 404, "not_found")
    assert theirs.json() == missing.json()


def test_an_id_past_the_databases_integers_is_not_found(api: Client) -> None:
    error_of(api.get(url("api_subscription", pk=2**80)), 404, "not_found")


# Auto-renewal off


def test_off_cancels_through_the_service_once(api: Client, subscription: Subscription) -> None:
    response = api.post(url("api_auto_renew_off", pk=subscription.pk))
    events = AuditEvent.objects.count()
    again = api.post(url("api_auto_renew_off", pk=subscription.pk))

    assert response.status_code == again.status_code == 200
    assert response.json()["auto_renew"] is False
    assert again.json() == response.json()
    assert AuditEvent.objects.count() == events
    consent = Consent.objects.get(subscription=subscription)
    assert consent.revoked_via == "api"


def test_off_for_another_users_subscription_changes_nothing(api: Client) -> None:
    other = make_subscription()

    error_of(api.post(url("api_auto_renew_off", pk=other.pk)), 404, "not_found")

    other.refresh_from_db()
    assert other.auto_renew is True


# Auto-renewal on


@pytest.fixture
def cancelled(user: User, subscription: Subscription) -> Any:
    cancel_auto_renewal(subscription, actor=user, via="manage_page")
    return subscription


def test_on_records_the_apps_consent_evidence(api: Client, cancelled: Any) -> None:
    with freeze_time("2027-02-10 04:00:00+00:00"):
        response = post_json(
            api,
            url("api_auto_renew_on", pk=cancelled.pk),
            resume_body(cancelled),
            HTTP_USER_AGENT="ExampleApp/3.2.1 (iOS 18)",
        )

    assert response.status_code == 200
    assert response.json()["auto_renew"] is True
    assert response.json()["consent_given_at"] == "2027-02-10T12:00:00+08:00"
    consent = Consent.objects.get(subscription=cancelled, revoked_at__isnull=True)
    assert consent.channel == "app"
    assert consent.form_id == "settings.subscription.resume@3.2.1"
    assert consent.ip_address == "127.0.0.1"
    assert consent.user_agent == "ExampleApp/3.2.1 (iOS 18)"
    assert consent.locale == "zh-Hans"
    assert consent.control_initially_unticked is True
    assert consent.terms_hash == cancelled.terms.content_hash


def test_on_with_a_stale_terms_hash_is_a_conflict_naming_the_current_hash(
    api: Client, cancelled: Any
) -> None:
    response = post_json(
        api, url("api_auto_renew_on", pk=cancelled.pk), resume_body(cancelled, terms_hash="0" * 64)
    )

    error = error_of(response, 409, "stale_terms")
    assert error["current_terms_hash"] == cancelled.terms.content_hash
    cancelled.refresh_from_db()
    assert cancelled.auto_renew is False


def test_with_a_new_price_pending_on_consents_to_the_terms_the_subscription_shows(
    api: Client, cancelled: Any
) -> None:
    dearer = make_terms(amount="30.00")
    Subscription.objects.filter(pk=cancelled.pk).update(upcoming_terms=dearer)
    on = url("api_auto_renew_on", pk=cancelled.pk)
    shown = api.get(url("api_subscription", pk=cancelled.pk)).json()
    assert shown["amount"] == "30.00"
    assert shown["terms_hash"] == dearer.content_hash

    stale = post_json(api, on, resume_body(cancelled))  # the terms the subscription began on
    assert error_of(stale, 409, "stale_terms")["current_terms_hash"] == shown["terms_hash"]
    response = post_json(api, on, resume_body(cancelled, terms_hash=shown["terms_hash"]))

    assert response.status_code == 200
    assert response.json()["terms_hash"] == dearer.content_hash
    consent = Consent.objects.get(subscription=cancelled, revoked_at__isnull=True)
    assert consent.terms == dearer
    assert consent.terms_hash == dearer.content_hash


@pytest.mark.parametrize(
    "field", ["affirmative", "control_initially_unticked"], ids=["not-ticked", "pre-ticked"]
)
def test_on_without_valid_consent_is_refused_and_changes_nothing(
    api: Client, cancelled: Any, field: str
) -> None:
    consents = Consent.objects.count()

    response = post_json(
        api, url("api_auto_renew_on", pk=cancelled.pk), resume_body(cancelled, **{field: False})
    )

    error = error_of(response, 422, "validation_error")
    assert [detail["loc"] for detail in error["details"]] == [[field]]
    assert Consent.objects.count() == consents
    cancelled.refresh_from_db()
    assert cancelled.auto_renew is False


def test_on_for_an_ended_subscription_is_a_conflict(api: Client, user: User) -> None:
    ended = make_subscription(user, status=Status.CANCELED, auto_renew=False)

    response = post_json(api, url("api_auto_renew_on", pk=ended.pk), resume_body(ended))

    error_of(response, 409, "not_live")


def test_on_for_another_users_subscription_is_not_found(api: Client) -> None:
    other = make_subscription(auto_renew=False)

    response = post_json(api, url("api_auto_renew_on", pk=other.pk), resume_body(other))

    error_of(response, 404, "not_found")
    assert not Consent.objects.filter(subscription=other).exists()


# Request bodies


def test_malformed_json_is_400(api: Client, cancelled: Any) -> None:
    response = api.post(
        url("api_auto_renew_on", pk=cancelled.pk),
        '{"terms_hash": ',
        content_type="application/json",
    )

    error_of(response, 400, "malformed_json")


def test_an_invalid_body_is_422_naming_each_field(api: Client, cancelled: Any) -> None:
    body = resume_body(cancelled, affirmative="true", ui={}, surprise=1)

    response = post_json(api, url("api_auto_renew_on", pk=cancelled.pk), body)

    error = error_of(response, 422, "validation_error")
    assert sorted(tuple(detail["loc"]) for detail in error["details"]) == [
        ("affirmative",),
        ("surprise",),
        ("ui", "screen"),
    ]
    cancelled.refresh_from_db()
    assert cancelled.auto_renew is False


def test_a_body_that_is_not_json_is_415(api: Client, cancelled: Any) -> None:
    response = api.post(url("api_auto_renew_on", pk=cancelled.pk), resume_body(cancelled))

    error_of(response, 415, "unsupported_media_type")


def test_a_body_over_the_upload_limit_is_413(
    api: Client, cancelled: Any, settings: Settings
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = resume_body(cancelled, disclosure_text="x" * 200)

    error_of(
        post_json(api, url("api_auto_renew_on", pk=cancelled.pk), body), 413, "payload_too_large"
    )


# Devices


def register(api: Client, token: str = "fcm-token-1", **fields: Any) -> Any:
    body = {"platform": "android", "provider": "fcm", "token": token, **fields}
    return post_json(api, url("api_devices"), body)


def test_registering_a_device_is_idempotent_on_its_token(api: Client, user: User) -> None:
    with freeze_time("2027-02-01 02:00:00+00:00"):
        created = register(api)
    with freeze_time("2027-02-05 02:00:00+00:00"):
        again = register(api, platform="harmony", provider="huawei")

    assert created.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == created.json()["id"]
    assert again.json()["last_seen_at"] == "2027-02-05T02:00:00Z"
    device = Device.objects.get(user=user)
    assert (device.platform, device.provider, device.active) == ("harmony", "huawei", True)
    assert "token" not in again.json()


def test_a_token_registered_by_another_user_moves_to_this_one(api: Client, user: User) -> None:
    previous, _ = register_device(make_user(), platform="ios", provider="apns", token="t0k3n")

    response = register(api, token="t0k3n")

    assert response.status_code == 200
    assert response.json()["id"] == previous.pk
    assert Device.objects.get(pk=previous.pk).user == user


def test_removing_a_device_deactivates_it_and_registering_it_again_revives_it(api: Client) -> None:
    device_id = register(api).json()["id"]

    first = api.delete(url("api_device", pk=device_id))
    second = api.delete(url("api_device", pk=device_id))

    assert first.status_code == second.status_code == 204
    assert Device.objects.get(pk=device_id).active is False
    assert register(api).json()["active"] is True


def test_another_users_device_cannot_be_removed(api: Client) -> None:
    theirs, _ = register_device(make_user(), platform="ios", provider="apns", token="theirs")

    error_of(api.delete(url("api_device", pk=theirs.pk)), 404, "not_found")
    assert Device.objects.get(pk=theirs.pk).active is True


def test_an_invalid_device_is_422(api: Client) -> None:
    error = error_of(register(api, platform="symbian", token=""), 422, "validation_error")

    assert sorted(detail["loc"][0] for detail in error["details"]) == ["platform", "token"]
    assert not Device.objects.exists()


# Methods and addresses


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("get", "/api/v1/subscriptions/1/auto-renew/off/", "POST"),
        ("delete", "/api/v1/subscriptions/1/", "GET"),
        ("put", "/api/v1/devices/", "POST"),
    ],
)
def test_a_wrong_method_is_405_with_allow_even_unauthenticated(
    client: Client, method: str, path: str, allow: str
) -> None:
    response = getattr(client, method)(path)

    error_of(response, 405, "method_not_allowed")
    assert response["Allow"] == allow


def test_the_openapi_document_takes_only_get(client: Client) -> None:
    response = client.post(url("api_openapi"))

    error_of(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET"


def test_unknown_api_addresses_are_404_in_the_error_shape(
    api: Client, subscription: Subscription
) -> None:
    error_of(api.get("/api/v1/nothing/here/"), 404, "not_found")
    # No APPEND_SLASH redirect, which would turn the POST into a GET.
    error_of(api.post(f"/api/v1/subscriptions/{subscription.pk}/auto-renew/off"), 404, "not_found")


# Authentication: 401, 403 and CSRF


def test_no_credentials_is_401_and_changes_nothing(
    client: Client, subscription: Subscription
) -> None:
    responses = [
        client.get(url("api_subscriptions")),
        client.post(url("api_auto_renew_off", pk=subscription.pk)),
        register(client),
    ]

    for response in responses:
        error_of(response, 401, "not_authenticated")
        assert "WWW-Authenticate" not in response
    subscription.refresh_from_db()
    assert subscription.auto_renew is True
    assert not Device.objects.exists()


def test_an_authentication_hook_that_cannot_be_imported_names_the_setting(
    api: Client, settings: Settings
) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "API_AUTHENTICATION": "nowhere.hook"}

    with pytest.raises(ImproperlyConfigured, match=r"RENEWALS\['API_AUTHENTICATION'\]"):
        api.get(url("api_subscriptions"))


def test_a_bad_token_is_401_with_the_hooks_challenge(settings: Settings) -> None:
    settings.RENEWALS = {
        **settings.RENEWALS,
        "API_AUTHENTICATION": "tests.renewals.api_auth.bearer_token",
    }
    client = Client(HTTP_AUTHORIZATION="Bearer forged")

    response = client.get(url("api_subscriptions"))

    error_of(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_an_inactive_user_is_403(api: Client, user: User) -> None:
    user.is_active = False
    user.save()

    error_of(api.get(url("api_subscriptions")), 403, "permission_denied")


def test_a_hook_that_refuses_the_user_is_403(
    client: Client, settings: Settings, user: User
) -> None:
    settings.RENEWALS = {
        **settings.RENEWALS,
        "API_AUTHENTICATION": "tests.renewals.api_auth.staff_only",
    }
    client.force_login(user)

    error_of(client.get(url("api_subscriptions")), 403, "permission_denied")
    user.is_staff = True
    user.save()
    assert client.get(url("api_subscriptions")).status_code == 200


def test_by_default_the_session_authenticates_and_passes_django_csrf_check(
    user: User, subscription: Subscription, settings: Settings
) -> None:
    settings.RENEWALS = {k: v for k, v in settings.RENEWALS.items() if k != "API_AUTHENTICATION"}
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    off = url("api_auto_renew_off", pk=subscription.pk)

    forged = browser.post(off)
    listed = browser.get(url("api_subscriptions"))  # also hands out the CSRF cookie
    token = browser.cookies["csrftoken"].value
    allowed = browser.post(off, HTTP_X_CSRFTOKEN=token)

    error_of(forged, 403, "csrf_failed")
    assert listed.status_code == 200
    assert allowed.status_code == 200
    assert allowed.json()["auto_renew"] is False


def test_token_requests_are_not_csrf_checked(api: Client, subscription: Subscription) -> None:
    response = api.post(url("api_auto_renew_off", pk=subscription.pk))

    assert response.status_code == 200
    assert "csrftoken" not in response.cookies


def test_a_token_request_the_users_session_could_also_authenticate_is_csrf_checked(
    api: Client, user: User, subscription: Subscription
) -> None:
    api.force_login(user)

    response = api.post(url("api_auto_renew_off", pk=subscription.pk))

    error_of(response, 403, "csrf_failed")


def test_a_token_request_beside_another_users_session_is_not_csrf_checked(
    api: Client, subscription: Subscription
) -> None:
    api.force_login(make_user())

    response = api.post(url("api_auto_renew_off", pk=subscription.pk))

    assert response.status_code == 200


# The OpenAPI document


@pytest.fixture
def document(client: Client) -> dict[str, Any]:
    response = client.get(url("api_openapi"))
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_the_openapi_document_is_valid_openapi_3_1() -> None:
    schema = schemathesis.openapi.from_wsgi(url("api_openapi"), get_wsgi_application())

    schema.validate()
    assert schema.raw_schema["openapi"] == "3.1.0"


def test_the_openapi_document_lists_every_route_at_its_address(document: dict[str, Any]) -> None:
    server = document["servers"][0]["url"]

    for route in ROUTES:
        kwargs = {name: 1 for name, _ in route.parameters}
        item = document["paths"][f"/{route.template}"]
        assert server + f"/{route.template}".replace("{pk}", "1") == url(route.name, **kwargs)
        assert sorted(item) == sorted(op.method.lower() for op in route.operations)


def test_the_openapi_document_is_generated_from_the_models(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    generated = ResumeRequest.model_json_schema(ref_template="#/components/schemas/{model}")

    assert schemas["ResumeRequest"] == {k: v for k, v in generated.items() if k != "$defs"}
    assert schemas["UiIdentity"] == generated["$defs"]["UiIdentity"]
    assert set(schemas["ErrorBody"]["properties"]) >= {"code", "message", "details"}
    body = document["paths"]["/subscriptions/{pk}/auto-renew/on/"]["post"]
    assert sorted(body["responses"]) == [
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "415",
        "422",
    ]
