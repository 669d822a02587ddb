import datetime as dt
import io
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse
from django_q.models import Schedule
from freezegun import freeze_time

from example_project import settings as example_settings
from example_project.management.commands.demo_remind_now import LEAD
from example_project.models import Profile
from example_project.plans import PLANS
from example_project.recipients import resolve_recipient
from notifications.backends import locmem
from notifications.exceptions import InvalidRecipient
from notifications.messages import PushMessage
from notifications.models import Device, OutboxMessage
from renewals.links import cancel_url
from renewals.models import (
    AuditEvent,
    NoticeStatus,
    RenewalTerms,
    RevokedVia,
    Status,
    Subscription,
)
from renewals.schedules import SCHEDULES

pytestmark = [pytest.mark.django_db, pytest.mark.urls("example_project.urls")]

NOW = dt.datetime(2027, 3, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
SITE = "https://shop.example"
MANAGE = "/subscriptions/"


@pytest.fixture(autouse=True)
def _demo_templates(settings):
    """The example's template settings: its folder first, so its renewals/base.html wins."""
    settings.TEMPLATES = example_settings.TEMPLATES


@pytest.fixture
def demo():
    call_command("demo_setup", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def demo_settings(settings):
    """The example's notification settings (database backends, its resolver) and links."""
    settings.NOTIFICATIONS = example_settings.NOTIFICATIONS
    settings.RENEWALS = {"BASE_URL": SITE}


def ticked(page) -> dict[str, str]:
    """What a browser posts from the consent form ``page`` shows, with the box ticked."""
    form = page.context["form"]
    return {
        "auto_renew_consent": "yes",
        "disclosure_token": form["disclosure_token"].initial,
        "request_key": form["request_key"].initial,
    }


def subscribe_to(client, plan: str, username: str = "demo") -> Subscription:
    client.login(username=username, password=username)
    url = reverse("subscribe", args=[plan])
    return client.post(url, ticked(client.get(url)), follow=True).context["subscriptions"].get()


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

    assert "Free trial: 7 days." in page.text
    assert "(Asia/Shanghai time)" in page.text  # the profile's zone, not the site's UTC

    unticked = client.post(url, {**ticked(page), "auto_renew_consent": "on"})
    assert unticked.status_code == 200
    assert unticked.context["form"].errors

    client.post(url, ticked(page))
    response = client.post(url, ticked(page), follow=True)  # a double click
    assert response.redirect_chain == [(MANAGE, 302)]
    subscription = response.context["subscriptions"].get()
    assert subscription.auto_renew
    assert subscription.time_zone == "Asia/Shanghai"  # the profile's, not the site's UTC
    assert subscription.consents.get().form_id == "example_project.subscribe"
    # The package's manage page, in the demo's layout.
    assert f'<a href="{reverse("plans")}">Plans</a>' in response.text
    assert f'<a href="{MANAGE}">My subscriptions</a>' in response.text
    assert "You subscribed to Example Plus (monthly)." in response.text

    manage = client.post(reverse("renewals:auto_renew_off", args=[subscription.pk]), follow=True)
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    assert subscription.consents.get().revoked_via == RevokedVia.MANAGE_PAGE
    assert "Auto-renewal of Example Plus (monthly) is off." in manage.text


def test_the_demo_has_no_manage_page_of_its_own():
    for name in ("subscriptions", "switch_auto_renewal_off"):
        with pytest.raises(NoReverseMatch):
            reverse(name, args=[1] if name != "subscriptions" else [])
    assert example_settings.RENEWALS.get("MANAGE_URL") is None  # the default: renewals:manage


def test_terms_changed_since_the_page_was_shown_are_asked_again(client, demo, monkeypatch):
    client.login(username="demo", password="demo")
    url = reverse("subscribe", args=["yearly"])
    page = client.get(url)
    monkeypatch.setitem(PLANS, "yearly", {**PLANS["yearly"], "amount": Decimal("258.00")})

    response = client.post(url, ticked(page))

    assert "The terms changed after this page was shown." in response.text
    assert "258.00 CNY" in response.text
    assert not get_user_model().objects.get(username="demo").renewal_subscriptions.exists()


def test_a_second_subscription_to_the_same_plan_is_refused_with_a_link(client, demo):
    first = subscribe_to(client, "yearly")
    url = reverse("subscribe", args=["yearly"])

    response = client.post(url, ticked(client.get(url)))

    assert response.status_code == 200
    assert "You already subscribe to Example Plus (yearly)" in response.text
    assert f'href="{MANAGE}#subscription-{first.pk}"' in response.text
    assert f'id="subscription-{first.pk}"' in client.get(MANAGE).text
    assert Subscription.objects.get() == first


def test_the_free_trial_is_given_once(client, demo):
    first = subscribe_to(client, "monthly")
    assert first.status == Status.TRIALING
    first.transition_to(Status.CANCELED, auto_renew=False)
    url = reverse("subscribe", args=["monthly"])

    page = client.get(url)
    assert "No free trial: you have already had the free trial of this service." in page.text
    assert "Free trial: 7 days." not in page.text
    client.post(url, ticked(page))

    again = Subscription.objects.exclude(pk=first.pk).get()
    assert again.status == Status.ACTIVE
    assert again.trial_ends_at is None
    assert "No free trial" in again.consents.get().disclosure_text


def test_a_checkout_replayed_by_another_user_or_for_another_plan_is_a_clear_error(client, demo):
    client.login(username="demo", password="demo")
    monthly = reverse("subscribe", args=["monthly"])
    posted = ticked(client.get(monthly))
    client.post(monthly, posted)
    yearly = reverse("subscribe", args=["yearly"])
    other_plan = {**ticked(client.get(yearly)), "request_key": posted["request_key"]}

    def assert_refused(response):
        assert response.status_code == 200
        assert "This checkout was already used. Please read the terms again." in response.text
        assert not response.context["form"].is_bound  # asked again, with a new checkout key

    assert_refused(client.post(yearly, other_plan))
    client.login(username="admin", password="admin")
    assert_refused(client.post(monthly, posted))
    assert Subscription.objects.count() == 1


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
    assert sms.body.endswith(f"Turn off auto-renewal: {cancel_url(notice)}")
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
    settings.RENEWALS = {"BASE_URL": SITE}
    subscription = subscribe_to(client, "yearly")
    remind_now()
    (push,) = [message for message in locmem.outbox if isinstance(message, PushMessage)]
    assert push.url == cancel_url(subscription.notices.get(status=NoticeStatus.SENT))
    page = client.get(push.url.removeprefix(SITE))
    assert page.status_code == 200
    assert "Example Plus (yearly)" in page.text
    assert 'href="/subscriptions/"' in page.text


def test_demo_remind_now_without_a_subscription(demo):
    assert "subscribe to a plan first" in remind_now()
