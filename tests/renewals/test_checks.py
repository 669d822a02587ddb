"""System checks and settings errors name the key to fix."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from pytest_django import Settings

from renewals.checks import check_base_url, check_gateway, check_manage_url, check_settings
from renewals.conf import DEFAULTS, RenewalsSettings, renewals_settings
from renewals.gateways import get_gateway
from renewals.gateways.local import LocalGateway
from renewals.links import manage_url
from renewals.policies import builtin_packs


def test_defaults_pass() -> None:
    assert check_settings() == []
    assert check_gateway() == []
    assert isinstance(get_gateway(), LocalGateway)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("SEND_HOUR", "RENEWALS['SEND_HOUR'] is not a setting; did you mean 'SEND_HOURS'?"),
        ("send_hours", "RENEWALS['send_hours'] is not a setting; did you mean 'SEND_HOURS'?"),
        ("COLOUR", "RENEWALS['COLOUR'] is not a setting."),
    ],
)
@pytest.mark.django_db  # Django 6.1's model checks ask the database for its features
def test_an_unknown_key_is_an_error_naming_the_closest_known_key(
    settings: Settings, key: str, problem: str
) -> None:
    settings.RENEWALS = {key: (9, 21), "DEFAULT_POLICY": "cn"}
    (error,) = [message for message in run_checks() if str(message.id).startswith("renewals.")]
    assert error.id == "renewals.E017"
    assert error.msg == problem
    assert "SEND_HOURS" in str(error.hint)
    for known in ("SEND_HOURS", "DEFAULT_POLICY"):  # nothing is read past a typo
        with pytest.raises(ImproperlyConfigured) as raised:
            getattr(renewals_settings, known)
        assert str(raised.value).startswith(problem)
        assert str(raised.value).endswith(f"Known keys: {', '.join(sorted(DEFAULTS))}.")


def test_every_key_of_the_defaults_is_known(settings: Settings) -> None:
    settings.RENEWALS = {key: default for key, (default, _validate) in DEFAULTS.items()}
    assert renewals_settings.unknown_keys() == []
    assert check_settings() == []


def test_every_key_is_typed_as_its_validator_returns() -> None:
    """The settings object declares each key's type, so mypy checks its readers."""
    assert sorted(RenewalsSettings.__annotations__) == sorted(DEFAULTS)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SEND_HOURS", (20, 10)),
        ("SEND_HOURS", "day"),
        ("RETRY_MARGIN_HOURS", -1),
        ("DEFAULT_TIME_ZONE", "Mars/Olympus"),
    ],
)
def test_invalid_value_names_the_key(
    settings: Settings, key: str, value: tuple[int, int] | str | int
) -> None:
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
def test_a_bad_gateway_is_an_error(
    settings: Settings, gateway: dict[str, Any], fragment: str
) -> None:
    settings.RENEWALS = {"GATEWAY": gateway}
    (error,) = check_gateway()
    assert error.id == "renewals.E010"
    assert fragment in error.msg


def test_override_settings_reaches_the_gateway(settings: Settings) -> None:
    first = get_gateway()
    settings.RENEWALS = {"GATEWAY": {"BACKEND": "renewals.gateways.local.LocalGateway"}}
    assert get_gateway() is not first


def test_base_url_is_required_while_a_pack_in_force_sends_notices(settings: Settings) -> None:
    settings.RENEWALS = {}
    (error,) = check_base_url()
    assert error.id == "renewals.E012"
    assert "RENEWALS['BASE_URL']" in error.msg
    assert "cn" in error.msg
    settings.RENEWALS = {"BASE_URL": "https://shop.example"}
    assert check_base_url() == []


def test_base_url_is_not_required_when_no_pack_in_force_sends_notices(settings: Settings) -> None:
    silent = {code: {"extends": code, "status": "inactive"} for code in builtin_packs()}
    settings.RENEWALS = {"POLICIES": silent}
    assert check_base_url() == []


@pytest.mark.parametrize(
    "value", ["shop.example", "ftp://shop.example", "https://shop.example/?a=1", "https://"]
)
def test_base_url_must_be_an_absolute_web_address(settings: Settings, value: str) -> None:
    settings.RENEWALS = {"BASE_URL": value}
    (error,) = check_settings()
    assert error.id == "renewals.E011"
    assert "RENEWALS['BASE_URL']" in error.msg


def test_links_are_absolute_from_base_url(settings: Settings) -> None:
    settings.RENEWALS = {"BASE_URL": "https://shop.example/", "MANAGE_URL": "/account/subs/"}
    assert manage_url() == "https://shop.example/account/subs/"
    settings.RENEWALS = {}
    with pytest.raises(ImproperlyConfigured, match=r"RENEWALS\['BASE_URL'\]"):
        manage_url()


@pytest.mark.parametrize("value", ["renewals:manage", "/account/subscriptions/"])
def test_manage_url_resolves(settings: Settings, value: str) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "MANAGE_URL": value}
    assert check_manage_url() == []


def test_a_manage_url_that_names_no_page_is_an_error(settings: Settings) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "MANAGE_URL": "account:subscriptions"}
    (error,) = check_manage_url()
    assert error.id == "renewals.E013"
    assert "'account:subscriptions'" in error.msg
    assert "include('renewals.urls')" in str(error.hint)


def test_every_other_gateway_is_built_by_the_check(settings: Settings) -> None:
    settings.RENEWALS = {"GATEWAYS": {"stripe": {"BACKEND": "no.such.Gateway"}}}
    (error,) = check_gateway()
    assert error.id == "renewals.E010"
    assert "RENEWALS['GATEWAYS']['stripe']" in error.msg


def test_a_bad_schedule_setting_is_an_error(settings: Settings) -> None:
    settings.RENEWALS = {"SCHEDULES": {"renewals.no_such_job": 5}}
    (error,) = check_settings()
    assert error.id == "renewals.E011"
    assert "renewals.no_such_job" in error.msg
