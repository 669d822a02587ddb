import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from notifications.conf import notifications_settings


def test_defaults():
    with override_settings(NOTIFICATIONS={}):
        assert notifications_settings.BACKENDS["sms"]["BACKEND"].endswith("console.SMSBackend")
        assert notifications_settings.CHANNELS == {"sms": "sms", "push": "push"}
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
def test_invalid_values_name_the_key(config, key):
    name = next(iter(config))
    with override_settings(NOTIFICATIONS=config), pytest.raises(ImproperlyConfigured) as exc:
        getattr(notifications_settings, name)
    assert key in str(exc.value)


def test_push_channel_maps_device_providers_to_aliases():
    channels = {"sms": "sms", "push": {"fcm": "fcm", "apns": "apns", "jpush": "jpush"}}
    with override_settings(NOTIFICATIONS={"CHANNELS": channels}):
        assert channels == notifications_settings.CHANNELS


def test_unknown_keys_and_attributes():
    with override_settings(NOTIFICATIONS={"QUIET_HOUR": (21, 8)}):
        assert notifications_settings.unknown_keys() == ["QUIET_HOUR"]
    with pytest.raises(AttributeError):
        notifications_settings.NOPE  # noqa: B018
