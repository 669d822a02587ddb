import pytest
from django.core import checks

from notifications.backends import locmem
from notifications.checks import check_deploy_backends, check_settings

from .helpers import configure

LOCMEM_SMS = {"BACKEND": "notifications.backends.locmem.SMSBackend"}
LOCMEM_PUSH = {"BACKEND": "notifications.backends.locmem.PushBackend"}
FCM = {"BACKEND": "tests.notifications.helpers.FCMPush"}


def ids(messages):
    return [m.id for m in messages]


def test_default_test_settings_pass():
    assert check_settings() == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"QUIET_HOURS": (25, 8)}, ["notifications.E001"]),
        ({"TYPO": 1}, ["notifications.E002"]),
        (
            {"BACKENDS": {"sms": {"BACKEND": "nope.Backend"}, "push": LOCMEM_PUSH}},
            ["notifications.E003"],  # once: the channel using the alias is not reported again
        ),
        (
            {"BACKENDS": {"sms": {**LOCMEM_SMS, "OPTIONS": {"x": 1}}, "push": LOCMEM_PUSH}},
            ["notifications.E003"],
        ),
        ({"CHANNELS": {"sms": "push"}}, ["notifications.E004"]),
        ({"CHANNELS": {"sms": "sms", "push": {"apns": "sms"}}}, ["notifications.E004"]),
        ({"CHANNELS": {"sms": "sms", "push": {"apns": "nope"}}}, ["notifications.E004"]),
        (
            {
                "BACKENDS": {"sms": LOCMEM_SMS, "push": LOCMEM_PUSH, "fcm": FCM},
                "CHANNELS": {"sms": "sms", "push": {"apns": "fcm"}},
            },
            ["notifications.E004"],
        ),
    ],
)
def test_errors(values, expected):
    with configure(**values):
        assert ids(check_settings()) == expected


class ComplainingBackend(locmem.SMSBackend):
    def check(self):
        return [checks.Error("bad", id="notifications.E999")]


def test_backend_check_messages_are_reported():
    backend = {"BACKEND": "tests.notifications.test_checks.ComplainingBackend"}
    with configure(BACKENDS={"sms": backend, "push": LOCMEM_PUSH}):
        assert ids(check_settings()) == ["notifications.E999"]


def test_deploy_check_warns_about_development_backends():
    assert ids(check_deploy_backends()) == ["notifications.W001"] * 2
    with configure(BACKENDS={"sms": {"BACKEND": "myproject.Provider"}, "push": LOCMEM_PUSH}):
        assert ids(check_deploy_backends()) == ["notifications.W001"]
    with configure(
        BACKENDS={"sms": {"BACKEND": "myproject.Provider"}, "push": LOCMEM_PUSH, "fcm": FCM},
        CHANNELS={"sms": "sms", "push": {"fcm": "fcm", "huawei": "push"}},
    ):
        assert ids(check_deploy_backends()) == ["notifications.W001"]


def test_push_aliases_per_device_provider_pass():
    with configure(
        BACKENDS={"sms": LOCMEM_SMS, "push": LOCMEM_PUSH, "fcm": FCM},
        CHANNELS={"sms": "sms", "push": {"fcm": "fcm", "huawei": "push"}},
    ):
        assert check_settings() == []
