"""System checks and settings errors name the key to fix."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from renewals.checks import check_gateway, check_settings
from renewals.conf import renewals_settings
from renewals.gateways import get_gateway
from renewals.gateways.local import LocalGateway


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
