import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django_q.models import Schedule
from freezegun import freeze_time

from example_project import settings as example_settings
from example_project.management.commands.demo_remind_now import LEAD
from example_project.models import Profile
from example_project.recipients import resolve_recipient
from notifications.backends import locmem
from notifications.exceptions import InvalidRecipient
from notifications.messages import PushMessage
from notifications.models import Device, OutboxMessage
from renewals.models import AuditEvent, NoticeStatus, RenewalTerms, RevokedVia, Subscription
from renewals.schedules import SCHEDULES

pytestmark = [pytest.mark.django_db, pytest.mark.urls("example_project.urls")]

NOW = dt.datetime(2027, 3, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
MANAGE = "https://shop.example/subscriptions/"


@pytest.fixture
def demo():
    call_command("demo_setup", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def demo_settings(settings):
    """The example's notification settings (database backends, its resolver) and links."""
    settings.NOTIFICATIONS = example_settings.NOTIFICATIONS
    settings.RENEWALS = {"BASE_URL": "https://shop.example", "MANAGE_URL": "subscriptions"}


def subscribe_to(client, plan: str) -> Subscription:
    client.login(username="demo", password="demo")
    url = reverse("subscribe", args=[plan])
    form = client.get(url).context["form"]
    ticked = {
        "terms_hash": form.terms.content_hash,
        "auto_renew_consent": "on",
        "request_key": form["request_key"].initial,
    }
    return client.post(url, ticked, follow=True).context["subscriptions"].get()


def remind_now() -> str:
    out = io.StringIO()
    call_command("demo_remind_now", stdout=out)
    return out.getvalue()


def test_demo_setup_is_idempotent(demo):
    call_command("demo_setup", stdout=io.StringIO(), stderr=io.StringIO())
    users = get_user_model().objects.order_by("username")
    assert [(u.username, u.is_superuser) for u in users] == [("admin", True), ("demo", False)]
    assert all(user.check_password(user.username) for user in users)
    assert RenewalTerms.objects.count() == 2
    profile = Profile.objects.get()
    assert (profile.user.username, profile.phone_number) == ("demo", "+86 138 0013 8000")
    device = Device.objects.get()
    assert (device.user, device.platform, device.token) == (
        profile.user,
        "android",
        "demo-device-token",
    )
    assert sorted(Schedule.objects.values_list("name", flat=True)) == sorted(
        spec.name for spec in SCHEDULES
    )


def test_the_resolver_reads_the_profile(demo):
    user_model = get_user_model()
    recipient = resolve_recipient(user_model.objects.get(username="demo"))
    assert recipient.phone == "+8613800138000"
    assert str(recipient.time_zone) == "Asia/Shanghai"
    assert [device.token for device in recipient.devices] == ["demo-device-token"]
    with pytest.raises(InvalidRecipient, match="cannot be reached"):
        resolve_recipient(user_model.objects.get(username="admin"))  # no profile, no device


def test_plans_page(client, demo):
    response = client.get(reverse("plans"))
    assert response.status_code == 200
    assert "25.00 CNY" in response.text
    assert "238.00 CNY" in response.text


def test_subscribe_then_switch_auto_renewal_off(client, demo):
    client.login(username="demo", password="demo")
    url = reverse("subscribe", args=["monthly"])
    page = client.get(url)
    assert "How to cancel" in page.text
    assert 'name="request_key"' in page.text
    form = page.context["form"]

    unticked = client.post(url, {"terms_hash": form.terms.content_hash})
    assert unticked.status_code == 200
    assert unticked.context["form"].errors

    ticked = {
        "terms_hash": form.terms.content_hash,
        "auto_renew_consent": "on",
        "request_key": form["request_key"].initial,
    }
    client.post(url, ticked)
    response = client.post(url, ticked, follow=True)  # a double click
    subscription = response.context["subscriptions"].get()
    assert subscription.auto_renew
    assert subscription.time_zone == "Asia/Shanghai"  # the profile's, not the site's UTC
    assert subscription.consents.get().form_id == "example_project.subscribe"

    client.post(reverse("switch_auto_renewal_off", args=[subscription.pk]))
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    assert subscription.consents.get().revoked_via == RevokedVia.MANAGE_PAGE


def test_stale_terms_are_refused_and_asked_again(client, demo):
    client.login(username="demo", password="demo")
    url = reverse("subscribe", args=["yearly"])
    response = client.post(url, {"terms_hash": "0" * 64, "auto_renew_consent": "on"})
    assert "show the current terms and ask again" in response.text
    assert not response.context["form"].is_bound
    assert not get_user_model().objects.get(username="demo").renewal_subscriptions.exists()


@freeze_time(NOW)
def test_demo_remind_now_sends_the_reminder_once(client, demo, demo_settings):
    subscription = subscribe_to(client, "monthly")

    output = remind_now()

    subscription.refresh_from_db()
    assert subscription.next_renewal_at == subscription.trial_ends_at == NOW + LEAD
    assert AuditEvent.objects.filter(kind="demo_renewal_moved").count() == 1
    notice = subscription.notices.get(renewal_at=NOW + LEAD)
    assert notice.status == NoticeStatus.SENT
    sms = OutboxMessage.objects.get(channel="sms")
    push = OutboxMessage.objects.get(channel="push")
    assert sms.recipient.startswith("+86 138")
    assert sms.body.endswith(f"Turn off auto-renewal: {MANAGE}")
    assert push.title == "Example Plus (monthly) renews on March 6, 2027"
    assert sms.body in output
    assert push.title in output
    assert push.body in output

    assert "already reminded" in remind_now()
    assert OutboxMessage.objects.count() == 2


@freeze_time(NOW)
def test_the_demo_reminder_push_opens_the_link(client, demo, settings):
    settings.NOTIFICATIONS = {
        **settings.NOTIFICATIONS,
        "RECIPIENT_RESOLVER": example_settings.NOTIFICATIONS["RECIPIENT_RESOLVER"],
    }
    settings.RENEWALS = {"BASE_URL": "https://shop.example", "MANAGE_URL": "subscriptions"}
    subscribe_to(client, "yearly")
    remind_now()
    (push,) = [message for message in locmem.outbox if isinstance(message, PushMessage)]
    assert push.url == MANAGE


def test_demo_remind_now_without_a_subscription(demo):
    assert "subscribe to a plan first" in remind_now()
