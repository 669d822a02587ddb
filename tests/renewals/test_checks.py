"""System checks and settings errors name the key to fix."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from renewals.checks import check_base_url, check_gateway, check_manage_url, check_settings
from renewals.conf import renewals_settings
from renewals.gateways import get_gateway
from renewals.gateways.local import LocalGateway
from renewals.links import manage_url
from renewals.policies import builtin_packs


def test_defaults_pass():
    assert check_settings() == []
    assert check_gateway() == []
    assert isinstance(get_gateway(), LocalGateway)


def test_unknown_key_is_a_warning(settings):
    settings.RENEWALS = {"SEND_HOUR": (9, 21)}
    (warning,) = check_settings()
    assert warning.id == "renewals.W010"
    assert "SEND_HOUR" in warning.msg


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SEND_HOURS", (20, 10)),
        ("SEND_HOURS", "day"),
        ("RETRY_MARGIN_HOURS", -1),
        ("DEFAULT_TIME_ZONE", "Mars/Olympus"),
    ],
)
def test_invalid_value_names_the_key(settings, key, value):
    settings.RENEWALS = {key: value}
    (error,) = check_settings()
    assert error.id == "renewals.E011"
    assert f"RENEWALS[{key!r}]" in error.msg
    with pytest.raises(ImproperlyConfigured, match=rf"RENEWALS\['{key}'\]"):
        getattr(renewals_settings, key)


@pytest.mark.parametrize(
    ("gateway", "fragment"),
    [
        ({"BACKEND": "no.such.Gateway"}, "cannot be imported"),
        ({"BACKEND": "decimal.Decimal"}, "is not a BillingGateway"),
        ({"BACKEND": "renewals.gateways.local.LocalGateway", "OPTIONS": {"x": 1}}, "no options"),
        ({"CLASS": "renewals.gateways.local.LocalGateway"}, "BACKEND"),
    ],
)
def test_a_bad_gateway_is_an_error(settings, gateway, fragment):
    settings.RENEWALS = {"GATEWAY": gateway}
    (error,) = check_gateway()
    assert error.id == "renewals.E010"
    assert fragment in error.msg


def test_override_settings_reaches_the_gateway(settings):
    first = get_gateway()
    settings.RENEWALS = {"GATEWAY": {"BACKEND": "renewals.gateways.local.LocalGateway"}}
    assert get_gateway() is not first


def test_base_url_is_required_while_a_pack_in_force_sends_notices(settings):
    settings.RENEWALS = {}
    (error,) = check_base_url()
    assert error.id == "renewals.E012"
    assert "RENEWALS['BASE_URL']" in error.msg
    assert "cn" in error.msg
    settings.RENEWALS = {"BASE_URL": "https://shop.example"}
    assert check_base_url() == []


def test_base_url_is_not_required_when_no_pack_in_force_sends_notices(settings):
    silent = {code: {"extends": code, "status": "inactive"} for code in builtin_packs()}
    settings.RENEWALS = {"POLICIES": silent}
    assert check_base_url() == []


@pytest.mark.parametrize(
    "value", ["shop.example", "ftp://shop.example", "https://shop.example/?a=1", "https://"]
)
def test_base_url_must_be_an_absolute_web_address(settings, value):
    settings.RENEWALS = {"BASE_URL": value}
    (error,) = check_settings()
    assert error.id == "renewals.E011"
    assert "RENEWALS['BASE_URL']" in error.msg


def test_links_are_absolute_from_base_url(settings):
    settings.RENEWALS = {"BASE_URL": "https://shop.example/", "MANAGE_URL": "/account/subs/"}
    assert manage_url() == "https://shop.example/account/subs/"
    settings.RENEWALS = {}
    with pytest.raises(ImproperlyConfigured, match=r"RENEWALS\['BASE_URL'\]"):
        manage_url()


@pytest.mark.parametrize("value", ["renewals:manage", "/account/subscriptions/"])
def test_manage_url_resolves(settings, value):
    settings.RENEWALS = {**settings.RENEWALS, "MANAGE_URL": value}
    assert check_manage_url() == []


def test_a_manage_url_that_names_no_page_is_an_error(settings):
    settings.RENEWALS = {**settings.RENEWALS, "MANAGE_URL": "account:subscriptions"}
    (error,) = check_manage_url()
    assert error.id == "renewals.E013"
    assert "'account:subscriptions'" in error.msg
    assert "include('renewals.urls')" in error.hint


def test_every_other_gateway_is_built_by_the_check(settings):
    settings.RENEWALS = {"GATEWAYS": {"stripe": {"BACKEND": "no.such.Gateway"}}}
    (error,) = check_gateway()
    assert error.id == "renewals.E010"
    assert "RENEWALS['GATEWAYS']['stripe']" in error.msg


def test_a_bad_schedule_setting_is_an_error(settings):
    settings.RENEWALS = {"SCHEDULES": {"renewals.no_such_job": 5}}
    (error,) = check_settings()
    assert error.id == "renewals.E011"
    assert "renewals.no_such_job" in error.msg
