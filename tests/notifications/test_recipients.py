from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from notifications.exceptions import InvalidRecipient
from notifications.models import Device
from notifications.recipients import Recipient, get_resolver, resolve_recipient

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return get_user_model().objects.create(username="ann")


def test_resolves_documented_attributes(user):
    user.phone_number = "+86 138 1234 5678"
    user.locale = "zh-hans"
    user.time_zone = "Asia/Shanghai"
    device = Device.objects.create(user=user, platform="ios", provider="apns", token="t1")
    Device.objects.create(user=user, platform="ios", provider="apns", token="t2", active=False)
    recipient = resolve_recipient(user)
    assert recipient.phone == "+8613812345678"
    assert recipient.devices == [device]
    assert recipient.locale == "zh-hans"
    assert recipient.time_zone == ZoneInfo("Asia/Shanghai")
    assert recipient.key == f"user:{user.pk}"


def test_get_notification_phone_wins_and_defaults_apply(user):
    user.phone_number = "+8613900000000"
    user.get_notification_phone = lambda: "+8613812345678"
    recipient = resolve_recipient(user)
    assert recipient.phone == "+8613812345678"
    assert recipient.locale == "en"
    assert recipient.time_zone == ZoneInfo("UTC")


def test_invalid_phone_names_the_attribute(user):
    user.phone_number = "12345"
    with pytest.raises(InvalidRecipient, match=r"user\.phone_number"):
        resolve_recipient(user)


def test_invalid_zone_names_the_attribute(user):
    user.phone_number = "+8613812345678"
    user.time_zone = "Mars/Olympus"
    with pytest.raises(InvalidRecipient, match=r"user\.time_zone"):
        resolve_recipient(user)


def test_unreachable_user_says_what_is_missing(user):
    with pytest.raises(InvalidRecipient, match=r"no phone number.*no active Device"):
        resolve_recipient(user)


def test_phone_only_recipient_key_hides_the_number():
    key = Recipient(phone="+8613812345678").key
    assert key.startswith("phone:")
    assert "13812345678" not in key
    with pytest.raises(InvalidRecipient):
        _ = Recipient().key


@override_settings(
    NOTIFICATIONS={"RECIPIENT_RESOLVER": "tests.notifications.helpers.phone_recipient"}
)
def test_resolver_is_configurable():
    assert get_resolver()("+8613900000000").phone == "+8613900000000"
