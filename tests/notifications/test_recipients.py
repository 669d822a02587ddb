from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from notifications.exceptions import InvalidRecipient
from notifications.models import Device
from notifications.recipients import Recipient, get_resolver, resolve_recipient
from notifications.types import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def user() -> User:
    return get_user_model().objects.create(username="ann")


def attributes(user: User, **values: object) -> None:
    """Give ``user`` attributes the default resolver reads, which auth.User does not declare."""
    vars(user).update(values)


def test_resolves_documented_attributes(user: User) -> None:
    attributes(user, phone_number="+86 138 1234 5678", locale="zh-hans", time_zone="Asia/Shanghai")
    device = Device.objects.create(user=user, platform="ios", provider="apns", token="t1")
    Device.objects.create(user=user, platform="ios", provider="apns", token="t2", active=False)
    recipient = resolve_recipient(user)
    assert recipient.phone == "+8613812345678"
    assert recipient.devices == [device]
    assert recipient.locale == "zh-hans"
    assert recipient.time_zone == ZoneInfo("Asia/Shanghai")
    assert recipient.key == f"user:{user.pk}"


def test_get_notification_phone_wins_and_defaults_apply(user: User) -> None:
    attributes(user, phone_number="+8613900000000", get_notification_phone=lambda: "+8613812345678")
    recipient = resolve_recipient(user)
    assert recipient.phone == "+8613812345678"
    assert recipient.locale == "en"
    assert recipient.time_zone == ZoneInfo("UTC")


def test_invalid_phone_names_the_attribute(user: User) -> None:
    attributes(user, phone_number="12345")
    with pytest.raises(InvalidRecipient, match=r"user\.phone_number"):
        resolve_recipient(user)


def test_invalid_zone_names_the_attribute(user: User) -> None:
    attributes(user, phone_number="+8613812345678", time_zone="Mars/Olympus")
    with pytest.raises(InvalidRecipient, match=r"user\.time_zone"):
        resolve_recipient(user)


def test_unreachable_user_says_what_is_missing(user: User) -> None:
    with pytest.raises(InvalidRecipient, match=r"no phone number.*no active Device"):
        resolve_recipient(user)


def test_phone_only_recipient_key_hides_the_number() -> None:
    key = Recipient(phone="+8613812345678").key
    assert key.startswith("phone:")
    assert "13812345678" not in key
    with pytest.raises(InvalidRecipient):
        _ = Recipient().key


def project_resolver(user: User) -> Recipient:
    return Recipient(user=user, phone="+8613900000000")


@override_settings(
    NOTIFICATIONS={"RECIPIENT_RESOLVER": "tests.notifications.test_recipients.project_resolver"}
)
def test_resolver_is_configurable() -> None:
    assert get_resolver() is project_resolver
