from collections.abc import Iterable
from typing import Any

import pytest
from django.core import checks
from pytest_django import Settings

from notifications.backends import locmem
from notifications.checks import check_deploy_backends, check_settings, check_time_zone_support

from .helpers import configure

LOCMEM_SMS = {"BACKEND": "notifications.backends.locmem.SMSBackend"}
LOCMEM_PUSH = {"BACKEND": "notifications.backends.locmem.PushBackend"}
FCM = {"BACKEND": "tests.notifications.helpers.FCMPush"}


def ids(messages: Iterable[checks.CheckMessage]) -> list[str | None]:
    return [m.id for m in messages]


def test_default_test_settings_pass() -> None:
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
def test_errors(values: dict[str, Any], expected: list[str]) -> None:
    with configure(**values):
        assert ids(check_settings()) == expected


class ComplainingBackend(locmem.SMSBackend):
    def check(self) -> list[checks.CheckMessage]:
        return [checks.Error("bad", id="notifications.E999")]


def test_backend_check_messages_are_reported() -> None:
    backend = {"BACKEND": "tests.notifications.test_checks.ComplainingBackend"}
    with configure(BACKENDS={"sms": backend, "push": LOCMEM_PUSH}):
        assert ids(check_settings()) == ["notifications.E999"]


def test_deploy_check_warns_about_development_backends() -> None:
    assert ids(check_deploy_backends()) == ["notifications.W001"] * 3  # email: Django's locmem
    with configure(BACKENDS={"sms": {"BACKEND": "myproject.Provider"}, "push": LOCMEM_PUSH}):
        assert ids(check_deploy_backends()) == ["notifications.W001"]
    with configure(
        BACKENDS={"sms": {"BACKEND": "myproject.Provider"}, "push": LOCMEM_PUSH, "fcm": FCM},
        CHANNELS={"sms": "sms", "push": {"fcm": "fcm", "huawei": "push"}},
    ):
        assert ids(check_deploy_backends()) == ["notifications.W001"]


def test_push_aliases_per_device_provider_pass() -> None:
    with configure(
        BACKENDS={"sms": LOCMEM_SMS, "push": LOCMEM_PUSH, "fcm": FCM},
        CHANNELS={"sms": "sms", "push": {"fcm": "fcm", "huawei": "push"}},
    ):
        assert check_settings() == []


def test_use_tz_off_is_refused(settings: Settings) -> None:
    # Aliyun signs Timestamp as UTC: with USE_TZ off, timezone.now() is the local time of
    # TIME_ZONE, 8 hours off under Asia/Shanghai.
    settings.USE_TZ, settings.TIME_ZONE = False, "Asia/Shanghai"
    assert ids(check_time_zone_support()) == ["notifications.E005"]
    settings.USE_TZ = True
    assert check_time_zone_support() == []
