from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from notifications.checks import check_settings
from notifications.conf import DEFAULTS, NotificationsSettings, notifications_settings


def test_defaults() -> None:
    with override_settings(NOTIFICATIONS={}):
        assert notifications_settings.BACKENDS["sms"]["BACKEND"].endswith("console.SMSBackend")
        assert notifications_settings.BACKENDS["email"]["BACKEND"].endswith("console.EmailBackend")
        assert notifications_settings.CHANNELS == {"sms": "sms", "push": "push", "email": "email"}
        assert notifications_settings.QUIET_HOURS is None
        assert notifications_settings.RATE_LIMIT == (10, 3600)
        assert notifications_settings.SMS_MAX_SEGMENTS == 4
        assert notifications_settings.RECEIPT_TIMEOUT == 72
        assert notifications_settings.DEFAULT_REGION is None


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"BACKENDS": {"sms": {"OPTIONS": {}}}}, "NOTIFICATIONS['BACKENDS']['sms']['BACKEND']"),
        ({"BACKENDS": {"sms": {"BACKEND": "x", "OPTION": {}}}}, "NOTIFICATIONS['BACKENDS']['sms']"),
        ({"BACKENDS": {"sms": {"BACKEND": "x", "OPTIONS": 1}}}, "['sms']['OPTIONS']"),
        ({"CHANNELS": {"fax": "sms"}}, "NOTIFICATIONS['CHANNELS']"),
        ({"CHANNELS": {"sms": {"twilio": "sms"}}}, "NOTIFICATIONS['CHANNELS']['sms']"),
        ({"CHANNELS": {"push": {}}}, "NOTIFICATIONS['CHANNELS']['push']"),
        ({"CHANNELS": {"push": {"": "fcm"}}}, "NOTIFICATIONS['CHANNELS']['push']"),
        ({"CHANNELS": {"push": {"fcm": ""}}}, "NOTIFICATIONS['CHANNELS']['push']['fcm']"),
        ({"QUIET_HOURS": (8, 8)}, "NOTIFICATIONS['QUIET_HOURS']"),
        ({"QUIET_HOURS": "night"}, "NOTIFICATIONS['QUIET_HOURS']"),
        ({"RATE_LIMIT": (0, 60)}, "NOTIFICATIONS['RATE_LIMIT']"),
        ({"SMS_MAX_SEGMENTS": "3"}, "NOTIFICATIONS['SMS_MAX_SEGMENTS']"),
        ({"DEFAULT_REGION": ""}, "NOTIFICATIONS['DEFAULT_REGION']"),
    ],
)
def test_invalid_values_name_the_key(config: dict[str, Any], key: str) -> None:
    name = next(iter(config))
    with override_settings(NOTIFICATIONS=config), pytest.raises(ImproperlyConfigured) as exc:
        getattr(notifications_settings, name)
    assert key in str(exc.value)


def test_push_channel_maps_device_providers_to_aliases() -> None:
    channels = {"sms": "sms", "push": {"fcm": "fcm", "apns": "apns", "jpush": "jpush"}}
    with override_settings(NOTIFICATIONS={"CHANNELS": channels}):
        assert channels == notifications_settings.CHANNELS


def test_an_unknown_key_is_an_error_naming_the_closest_known_key() -> None:
    problem = "NOTIFICATIONS['QUIET_HOUR'] is not a setting; did you mean 'QUIET_HOURS'?"
    with override_settings(NOTIFICATIONS={"QUIET_HOUR": (21, 8), "RATE_LIMIT": None}):
        assert notifications_settings.unknown_keys() == ["QUIET_HOUR"]
        with pytest.raises(ImproperlyConfigured) as raised:
            notifications_settings.RATE_LIMIT  # noqa: B018  (nothing is read past a typo)
        assert str(raised.value).startswith(problem)
        assert str(raised.value).endswith(f"Known keys: {', '.join(sorted(DEFAULTS))}.")
        (error,) = check_settings()
        assert (error.id, error.msg) == ("notifications.E002", problem)


def test_every_key_of_the_defaults_is_known() -> None:
    every_key = {key: default for key, (default, _validate) in DEFAULTS.items()}
    with override_settings(NOTIFICATIONS=every_key):
        assert notifications_settings.unknown_keys() == []
        assert notifications_settings.RATE_LIMIT == (10, 3600)


def test_every_key_is_typed_as_its_validator_returns() -> None:
    """The settings object declares each key's type, so mypy checks its readers."""
    assert sorted(NotificationsSettings.__annotations__) == sorted(DEFAULTS)


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        notifications_settings.NOPE  # noqa: B018
