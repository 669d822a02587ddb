import datetime as dt
import io
import os
import re
import runpy
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.timesince import timeuntil
from django_q.models import Schedule
from freezegun import freeze_time
from pytest_django import Settings

from example_project import demo_clock
from example_project import settings as example_settings
from example_project.demo_clock import DemoClock
from example_project.management.commands import renewals_demo_walkthrough as walkthrough_command
from example_project.models import Profile
from example_project.plans import PLANS
from example_project.recipients import resolve_recipient
from example_project.templatetags.inbox import linkify
from example_project.time_machine import jump_to_next_reminder, next_reminder
from notifications.exceptions import InvalidRecipient
from notifications.models import Delivery, Device, OutboxMessage
from notifications.types import User
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
from renewals.services import evidence_pack, verify_audit
from renewals.testing.stripe import FakeStripe
from renewals.testing.stripe import customer as stripe_customer
from renewals.testing.stripe import error as stripe_error
from renewals.testing.stripe import price as stripe_price
from renewals.testing.stripe import subscription as stripe_subscription
from renewals.views import one_click

pytestmark = [pytest.mark.django_db, pytest.mark.urls("example_project.urls")]

NOW = dt.datetime(2027, 3, 1, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
SITE = "https://shop.example"
MANAGE = "/subscriptions/"


@pytest.fixture(autouse=True)
def _demo_templates(settings: Settings) -> None:
    """The example's template settings: its folder first, so its renewals/base.html wins."""
    settings.TEMPLATES = example_settings.TEMPLATES


@pytest.fixture
def demo() -> None:
    call_command("demo_setup", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def demo_settings(settings: Settings) -> None:
    """The example's notification settings (database backends, its resolver) and links."""
    settings.NOTIFICATIONS = example_settings.NOTIFICATIONS
    settings.RENEWALS = {"BASE_URL": SITE}


@pytest.fixture
def example_middleware(settings: Settings) -> None:
    """The example's middleware (the page's language, the user's time zone) and languages."""
    settings.MIDDLEWARE = example_settings.MIDDLEWARE
    settings.LANGUAGES = example_settings.LANGUAGES


def ticked(page: Any) -> dict[str, str]:
    """What a browser posts from the consent form ``page`` shows, with the box ticked."""
    form = page.context["form"]
    return {
        "auto_renew_consent": "yes",
        "disclosure_token": form["disclosure_token"].initial,
        "request_key": form["request_key"].initial,
    }


def subscribe_to(client: Client, plan: str, username: str = "demo") -> Subscription:
    client.login(username=username, password=username)
    url = reverse("subscribe", args=[plan])
    response: Any = client.post(url, ticked(client.get(url)), follow=True)
    subscription: Subscription = response.context["subscriptions"].get()
    return subscription


def test_demo_setup_is_idempotent(demo: None) -> None:
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


def test_the_resolver_reads_the_profile(demo: None) -> None:
    user_model = get_user_model()
    recipient = resolve_recipient(user_model.objects.get(username="demo"))
    assert recipient.phone == "+8613800138000"
    assert recipient.email == "demo@example.com"
    assert str(recipient.time_zone) == "Asia/Shanghai"
    assert [device.token for device in recipient.devices] == ["demo-device-token"]
    admin = resolve_recipient(user_model.objects.get(username="admin"))  # no profile, no device
    assert (admin.phone, admin.email, admin.devices) == (None, "admin@example.com", [])
    with pytest.raises(InvalidRecipient, match="cannot be reached"):
        resolve_recipient(user_model.objects.create_user("nobody"))  # no way to reach them


def test_plans_page(client: Client, demo: None) -> None:
    response = client.get(reverse("plans"))
    assert response.status_code == 200
    assert "25.00 CNY" in response.text
    assert "238.00 CNY" in response.text


def test_subscribe_then_switch_auto_renewal_off(client: Client, demo: None) -> None:
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


def test_the_demo_has_no_manage_page_of_its_own() -> None:
    for name in ("subscriptions", "switch_auto_renewal_off"):
        with pytest.raises(NoReverseMatch):
            reverse(name, args=[1] if name != "subscriptions" else [])
    assert example_settings.RENEWALS.get("MANAGE_URL") is None  # the default: renewals:manage


def test_terms_changed_since_the_page_was_shown_are_asked_again(
    client: Client, demo: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.login(username="demo", password="demo")
    url = reverse("subscribe", args=["yearly"])
    page = client.get(url)
    monkeypatch.setitem(PLANS, "yearly", {**PLANS["yearly"], "amount": Decimal("258.00")})

    response = client.post(url, ticked(page))

    assert "The terms changed after this page was shown." in response.text
    assert "258.00 CNY" in response.text
    assert not get_user_model().objects.get(username="demo").renewal_subscriptions.exists()


def test_a_second_subscription_to_the_same_plan_is_refused_with_a_link(
    client: Client, demo: None
) -> None:
    first = subscribe_to(client, "yearly")
    url = reverse("subscribe", args=["yearly"])

    response = client.post(url, ticked(client.get(url)))

    assert response.status_code == 200
    assert "You already subscribe to Example Plus (yearly)" in response.text
    assert f'href="{MANAGE}#subscription-{first.pk}"' in response.text
    assert f'id="subscription-{first.pk}"' in client.get(MANAGE).text
    assert Subscription.objects.get() == first


def test_the_free_trial_is_given_once(client: Client, demo: None) -> None:
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


def test_a_checkout_replayed_by_another_user_or_for_another_plan_is_a_clear_error(
    client: Client, demo: None
) -> None:
    client.login(username="demo", password="demo")
    monthly = reverse("subscribe", args=["monthly"])
    posted = ticked(client.get(monthly))
    client.post(monthly, posted)
    yearly = reverse("subscribe", args=["yearly"])
    other_plan = {**ticked(client.get(yearly)), "request_key": posted["request_key"]}

    def assert_refused(response: Any) -> None:
        assert response.status_code == 200
        assert "This checkout was already used. Please read the terms again." in response.text
        assert not response.context["form"].is_bound  # asked again, with a new checkout key

    assert_refused(client.post(yearly, other_plan))
    client.login(username="admin", password="admin")
    assert_refused(client.post(monthly, posted))
    assert Subscription.objects.count() == 1


# --- the pages of the demo's own -------------------------------------------------------------


def test_the_header_leads_everywhere(client: Client, demo: None, demo_clock: DemoClock) -> None:
    signed_out = client.get(reverse("plans")).text
    client.login(username="demo", password="demo")
    page = client.get(reverse("plans")).text

    for name, label in [("login", "Log in"), ("signup", "Sign up")]:
        assert f'<a href="{reverse(name)}">{label}</a>' in signed_out
    assert reverse("time_machine") not in signed_out  # its button is for users signed in
    for name, label in [
        ("plans", "Plans"),
        ("renewals:manage", "My subscriptions"),
        ("account", "Account"),
        ("inbox", "Inbox"),
    ]:
        assert f'<a href="{reverse(name)}">{label}</a>' in page
    assert f'<form method="post" action="{reverse("time_machine")}">' in page
    assert "Time machine: jump to the next reminder</button>" in page
    assert f'action="{reverse("set_language")}"' in page
    assert "Log out demo</button>" in page


def test_signing_up_signs_in_with_a_profile(client: Client) -> None:
    fields = {"username": "newcomer", "password1": "a long pass 42", "password2": "a long pass 42"}

    response = client.post(reverse("signup"), fields, follow=True)

    assert response.redirect_chain == [(reverse("account"), 302)]
    assert "Welcome, newcomer. Add a phone number or a device" in response.text
    profile = Profile.objects.get(user__username="newcomer")
    assert (profile.time_zone, profile.phone_number, profile.language) == ("UTC", "", "en")
    assert response.wsgi_request.user.is_authenticated


def test_the_account_page_saves_where_the_user_is_reached(client: Client, demo: None) -> None:
    client.login(username="demo", password="demo")
    page = client.get(reverse("account"))
    assert 'value="+86 138 0013 8000"' in page.text
    assert '<option value="Asia/Shanghai" selected>' in page.text

    fields = {
        "email": "demo@example.org",
        "phone_number": "+1 415 555 0100",  # written as people write it: stored E.164
        "time_zone": "America/Los_Angeles",
        "language": "zh-hans",
    }
    response = client.post(reverse("account"), fields, follow=True)

    assert "Your account details are saved." in response.text
    profile = Profile.objects.select_related("user").get(user__username="demo")
    assert (profile.phone_number, profile.time_zone, profile.language) == (
        "+14155550100",
        "America/Los_Angeles",
        "zh-hans",
    )
    assert profile.user.email == "demo@example.org"
    assert resolve_recipient(profile.user).phone == "+14155550100"


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("phone_number", "12345", "Enter a mobile number that can receive SMS"),
        ("time_zone", "Mars/Olympus_Mons", "Select a valid choice."),
        ("email", "not an address", "Enter a valid email address."),
        ("language", "xx", "Select a valid choice."),
    ],
)
def test_the_account_page_shows_what_is_wrong_and_saves_nothing(
    client: Client, demo: None, field: str, value: str, error: str
) -> None:
    client.login(username="demo", password="demo")
    fields = {"email": "", "phone_number": "", "time_zone": "Europe/Berlin", "language": ""}

    response = client.post(reverse("account"), {**fields, field: value})

    assert response.status_code == 200
    assert error in response.text
    profile = Profile.objects.get(user__username="demo")
    assert (profile.phone_number, profile.time_zone) == ("+86 138 0013 8000", "Asia/Shanghai")


def test_a_user_without_a_profile_gets_one_on_saving(client: Client, demo: None) -> None:
    client.login(username="admin", password="admin")
    assert client.get(reverse("account")).status_code == 200
    assert not Profile.objects.filter(user__username="admin").exists()

    fields = {"email": "", "phone_number": "", "time_zone": "Europe/Berlin", "language": ""}
    client.post(reverse("account"), fields)

    assert Profile.objects.get(user__username="admin").time_zone == "Europe/Berlin"


def test_devices_are_registered_and_removed_on_the_account_page(client: Client, demo: None) -> None:
    client.login(username="demo", password="demo")
    add = reverse("add_device")

    refused = client.post(add, {"platform": "ios", "provider": "apns", "token": "has spaces"})
    assert refused.status_code == 200
    assert "A push token is printable ASCII without spaces." in refused.text
    client.post(add, {"platform": "ios", "provider": "apns", "token": "ios-token-1"})

    device = Device.objects.get(token="ios-token-1")
    assert (device.user.username, device.platform, device.provider, device.active) == (
        "demo",
        "ios",
        "apns",
        True,
    )
    page = client.get(reverse("account")).text
    assert f'action="{reverse("remove_device", args=[device.pk])}"' in page
    assert client.get(reverse("remove_device", args=[device.pk])).status_code == 405

    client.post(reverse("remove_device", args=[device.pk]))

    device.refresh_from_db()
    assert not device.active
    assert (
        f'action="{reverse("remove_device", args=[device.pk])}"'
        not in client.get(reverse("account")).text
    )


def test_another_users_device_cannot_be_removed(client: Client, demo: None) -> None:
    device = Device.objects.get(token="demo-device-token")
    client.login(username="admin", password="admin")

    assert client.post(reverse("remove_device", args=[device.pk])).status_code == 404

    device.refresh_from_db()
    assert device.active


def stored(user: User, body: str, channel: str = "sms", **fields: Any) -> OutboxMessage:
    """A message the database backend stored for ``user``, with its delivery."""
    key = f"test:{OutboxMessage.objects.count()}"
    delivery = Delivery.objects.create(
        channel=channel,
        backend_alias=channel,
        recipient="+86 138****8000",
        recipient_key=f"user:{user.pk}",
        user=user,
        template_key="test",
        locale="en",
        dispatch_key=key,
        idempotency_key=key,
        status=Delivery.Status.SENT,
        queued_at=timezone.now(),
    )
    return OutboxMessage.objects.create(
        channel=channel,
        backend_alias=channel,
        recipient=delivery.recipient,
        body=body,
        provider_message_id=f"db-{key}",
        delivery=delivery,
        **fields,
    )


def test_the_inbox_shows_the_users_own_messages_newest_first(client: Client, demo: None) -> None:
    users = get_user_model().objects.in_bulk(field_name="username")
    with freeze_time(NOW):
        stored(users["demo"], "the first SMS")
        stored(users["admin"], "an SMS to the admin")
    with freeze_time(NOW + dt.timedelta(hours=1)):
        stored(users["demo"], "the push", "push", title="A title", url=f"{SITE}/c/x/")
    client.login(username="demo", password="demo")

    page = client.get(reverse("inbox")).text

    assert "an SMS to the admin" not in page
    assert page.index("A title") < page.index("the push") < page.index("the first SMS")
    assert f'Tapping it opens: <a href="{SITE}/c/x/">' in page
    assert "<strong>Push</strong>" in page
    assert "<strong>SMS</strong>" in page


def test_staff_see_everyones_messages_with_whose(client: Client, demo: None) -> None:
    users = get_user_model().objects.in_bulk(field_name="username")
    stored(users["demo"], "an SMS to demo")
    client.login(username="admin", password="admin")

    page = client.get(reverse("inbox")).text

    assert "an SMS to demo" in page
    assert "(demo)" in page


def test_the_inbox_needs_a_login(client: Client) -> None:
    response = client.get(reverse("inbox"))
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/inbox/")


def test_links_in_messages_are_clickable_and_the_rest_escaped(client: Client, demo: None) -> None:
    link = f"{SITE}/c/aB.c_D-e/?x=1&y=2"
    body = f'<b>"hi"</b> 一键关闭：{link}。 Or: {SITE}/subscriptions/. javascript:alert(1)'  # noqa: RUF001
    stored(get_user_model().objects.get(username="demo"), body)
    client.login(username="demo", password="demo")

    page = client.get(reverse("inbox")).text

    escaped_link = link.replace("&", "&amp;")
    assert (
        "&lt;b&gt;&quot;hi&quot;&lt;/b&gt; 一键关闭："  # noqa: RUF001
        f'<a href="{escaped_link}">{escaped_link}</a>。 '
        f'Or: <a href="{SITE}/subscriptions/">{SITE}/subscriptions/</a>. javascript:alert(1)'
    ) in page
    assert "<b>" not in page


@pytest.mark.parametrize(
    ("text", "links"),
    [
        ("no link here", []),
        ("see https://a.example/x/.", ["https://a.example/x/"]),
        ("(http://a.example/p?q=1), then", ["http://a.example/p?q=1"]),
        (
            "两个：https://a.example/1，https://a.example/2！",  # noqa: RUF001
            ["https://a.example/1", "https://a.example/2"],
        ),
        ('x"https://a.example/"onclick=', ["https://a.example/"]),
        ("ftp://a.example/ javascript:alert(1)", []),
    ],
)
def test_linkify_finds_the_addresses(text: str, links: list[str]) -> None:
    html = linkify(text)
    assert re.findall(r'<a href="([^"]*)">', html) == [escape(link) for link in links]
    assert re.sub(r"<a href=\"[^\"]*\">|</a>", "", html) == escape(text)


# --- the demo clock and the time machine ----------------------------------------------------


def test_the_demo_clock_is_the_real_time_until_moved(demo_clock: DemoClock) -> None:
    with freeze_time(NOW):
        assert timezone.now() == NOW
        assert demo_clock.offset() == dt.timedelta(0)


def test_a_move_is_read_by_every_process(demo_clock: DemoClock) -> None:
    other_process = DemoClock(demo_clock.path)
    with freeze_time(NOW):
        assert other_process.now() == NOW
        demo_clock.advance_to(NOW + dt.timedelta(days=1))
        assert other_process.now() == NOW + dt.timedelta(days=1)

        moved = demo_clock.advance_to(NOW + dt.timedelta(days=6))

        assert moved == dt.timedelta(days=5)
        assert timezone.now() == other_process.now() == NOW + dt.timedelta(days=6)
    assert demo_clock.path.read_text() == "518400.000000\n"


def test_the_demo_clock_only_moves_forward(demo_clock: DemoClock) -> None:
    with freeze_time(NOW):
        demo_clock.advance_to(NOW + dt.timedelta(days=6))

        assert demo_clock.advance_to(NOW + dt.timedelta(days=5)) == dt.timedelta(0)
        assert demo_clock.advance_to(NOW + dt.timedelta(days=6)) == dt.timedelta(0)
        assert timezone.now() == NOW + dt.timedelta(days=6)
        assert demo_clock.advance_to(NOW + dt.timedelta(days=7)) == dt.timedelta(days=1)
    with freeze_time(NOW + dt.timedelta(days=1)):  # real time passes; the offset stays
        assert timezone.now() == NOW + dt.timedelta(days=8)


def test_a_damaged_clock_file_is_a_clear_error(demo_clock: DemoClock) -> None:
    demo_clock.path.write_text("six days")
    with pytest.raises(ValueError, match=r"demo_clock should hold the seconds .* 'six days'"):
        timezone.now()


def test_the_clock_is_installed_only_with_the_time_machine_on(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timezone, "now", timezone.now)  # put back after the test
    config = apps.get_app_config("example_project")
    settings.DEMO_TIME_MACHINE = False
    config.ready()
    assert demo_clock.installed() is None

    settings.DEMO_TIME_MACHINE = True
    settings.DEMO_CLOCK_FILE = None
    with pytest.raises(ImproperlyConfigured, match="DEMO_CLOCK_FILE is not set"):
        config.ready()

    settings.DEMO_CLOCK_FILE = str(tmp_path / "clock")
    config.ready()
    installed = demo_clock.installed()
    assert installed is not None
    assert installed.path == tmp_path / "clock"
    assert example_settings.DEMO_TIME_MACHINE
    assert example_settings.DEMO_CLOCK_FILE == example_settings.BASE_DIR / "demo_clock"


def test_the_header_shows_the_demo_clock_in_the_users_zone(
    client: Client, demo: None, example_middleware: None, demo_clock: DemoClock
) -> None:
    with freeze_time(NOW):
        assert "Demo clock: 2027-03-01 02:00 UTC (real time)" in client.get("/").text
        client.login(username="demo", password="demo")  # in Asia/Shanghai
        assert "Demo clock: 2027-03-01 10:00 Asia/Shanghai (real time)" in client.get("/").text
        demo_clock.advance_to(NOW + dt.timedelta(days=6, hours=3))
        page = client.get("/").text
    assert "Demo clock: 2027-03-07 13:00 Asia/Shanghai (+6\xa0days, 3\xa0hours)" in page


def test_a_jump_of_a_year_signs_nobody_out(
    client: Client, demo: None, demo_clock: DemoClock, settings: Settings
) -> None:
    settings.SESSION_ENGINE = example_settings.SESSION_ENGINE
    client.login(username="demo", password="demo")

    demo_clock.advance_to(timezone.now() + dt.timedelta(days=400))

    assert client.get(reverse("account")).status_code == 200


def press_time_machine(client: Client) -> Any:
    return client.post(reverse("time_machine"), follow=True)


@freeze_time(NOW)
def test_the_time_machine_sends_the_reminder_at_its_planned_time(
    client: Client, demo: None, demo_settings: None, demo_clock: DemoClock
) -> None:
    subscription = subscribe_to(client, "monthly")
    renewal_at = subscription.next_renewal_at
    notice = subscription.notices.get()
    assert notice.send_at > NOW

    response = press_time_machine(client)

    assert response.redirect_chain == [(reverse("inbox"), 302)]
    assert timezone.now() == notice.send_at  # the clock moved to the reminder, no further
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENT
    assert notice.sent_at == notice.send_at
    assert notice.given_in_window()
    subscription.refresh_from_db()
    assert subscription.next_renewal_at == renewal_at  # nothing was moved but the clock
    moved = AuditEvent.objects.get(kind="demo_clock_moved")
    assert (moved.chain, moved.actor) == ("system", f"user:{subscription.user_id}")
    assert moved.data["by_seconds"] == (notice.send_at - NOW).total_seconds()
    assert verify_audit().ok
    sms = OutboxMessage.objects.get(channel="sms")
    assert sms.body.endswith(f"Turn off auto-renewal: {cancel_url(notice)}")
    ahead = timeuntil(notice.send_at, NOW)
    assert (
        f"The demo clock moved forward {ahead}, to the reminder of Example Plus (monthly). "
        "The reminder: accepted by a provider."
    ) in response.text
    assert f'<a href="{escape(cancel_url(notice))}">' in response.text  # in the inbox


@freeze_time(NOW)
def test_the_time_machine_never_moves_the_clock_back(
    client: Client, demo: None, demo_settings: None, demo_clock: DemoClock
) -> None:
    subscription = subscribe_to(client, "monthly")
    notice = subscription.notices.get()
    late = notice.send_at + dt.timedelta(hours=2)  # past the send time, inside the window
    assert late < notice.window_closes_at
    demo_clock.advance_to(late)

    response = press_time_machine(client)

    assert timezone.now() == late
    assert not AuditEvent.objects.filter(kind="demo_clock_moved").exists()
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.SENT
    assert "The reminder of Example Plus (monthly) was due already." in response.text

    again = press_time_machine(client)  # nothing left to remind of

    assert timezone.now() == late
    assert "No reminder is planned: subscribe to a plan" in again.text
    assert OutboxMessage.objects.filter(channel="sms").count() == 1


@freeze_time(NOW)
def test_the_time_machine_goes_to_the_users_own_next_reminder_or_anyones_for_staff(
    client: Client, demo: None, demo_settings: None, demo_clock: DemoClock
) -> None:
    yearly = subscribe_to(client, "yearly")  # its reminder is a year away
    get_user_model().objects.create_user("other", password="other")
    Profile.objects.create(
        user=get_user_model().objects.get(username="other"),
        phone_number="+86 139 0013 9000",
        time_zone="Asia/Shanghai",
    )
    monthly = subscribe_to(client, "monthly", username="other")
    monthly_send_at = monthly.notices.get().send_at
    client.login(username="demo", password="demo")

    assert next_reminder(yearly.user) == yearly.notices.get()
    assert next_reminder(get_user_model().objects.get(username="admin")) == monthly.notices.get()

    press_time_machine(client)

    assert timezone.now() == yearly.notices.get().send_at
    assert timezone.now() > monthly_send_at  # other's reminder went by unsent: the sweep says so
    assert monthly.notices.get().status == NoticeStatus.MISSED


@pytest.mark.parametrize("method", ["get", "head", "put"])
def test_the_time_machine_takes_post_only(
    client: Client, demo: None, demo_clock: DemoClock, method: str
) -> None:
    client.login(username="demo", password="demo")
    assert getattr(client, method)(reverse("time_machine")).status_code == 405
    assert not demo_clock.path.exists()


def test_the_time_machine_refuses_anonymous_users(client: Client, demo_clock: DemoClock) -> None:
    assert client.post(reverse("time_machine")).status_code == 403
    assert not demo_clock.path.exists()


def test_the_time_machine_is_not_there_when_off(
    client: Client, demo: None, demo_clock: DemoClock, settings: Settings
) -> None:
    settings.DEMO_TIME_MACHINE = False
    client.login(username="demo", password="demo")

    assert client.post(reverse("time_machine")).status_code == 404
    assert "Demo clock" not in client.get("/").text
    assert not demo_clock.path.exists()


def test_the_time_machine_needs_the_demo_clock(demo: None, settings: Settings) -> None:
    settings.DEMO_TIME_MACHINE = True  # but no clock installed
    user = get_user_model().objects.get(username="demo")
    with pytest.raises(ImproperlyConfigured, match="needs the demo clock"):
        jump_to_next_reminder(user)


def time_machine_command(*args: str) -> str:
    out = io.StringIO()
    call_command("demo_time_machine", *args, stdout=out)
    return out.getvalue()


@freeze_time(NOW)
def test_the_time_machine_command_prints_the_messages(
    client: Client, demo: None, demo_settings: None, demo_clock: DemoClock
) -> None:
    assert "No reminder is planned for demo" in time_machine_command()
    subscription = subscribe_to(client, "monthly")
    send_at = subscription.local(subscription.notices.get().send_at)

    output = time_machine_command("--user", "demo")

    assert (
        f"The demo clock moved forward {timeuntil(send_at, NOW)}, to {send_at:%Y-%m-%d %H:%M}"
        in output
    )
    assert "The reminder of Example Plus (monthly): accepted by a provider." in output
    sms, push = OutboxMessage.objects.order_by("channel").reverse()
    assert f"SMS to {sms.recipient}:\n  {sms.body}\n" in output
    assert (
        f"Push to {push.recipient}:\n  {push.title}\n  {push.body}\n  opens {push.url}\n" in output
    )
    assert "2 message(s) stored: see the inbox page." in output
    with pytest.raises(CommandError, match="No user 'nobody'"):
        time_machine_command("--user", "nobody")


def test_the_time_machine_command_needs_the_demo_clock(demo: None) -> None:
    with pytest.raises(CommandError, match="The demo clock is off"):
        time_machine_command()


# --- the walkthrough ----------------------------------------------------------------------------


@pytest.fixture
def example_site(
    settings: Settings, example_middleware: None, demo_settings: None, demo_clock: DemoClock
) -> None:
    """The example project as ``make demo`` runs it: its middleware (languages, time zones),
    its notification backends, its address for the links, and the demo clock."""
    settings.RENEWALS = {"BASE_URL": "http://localhost:8000"}


def walkthrough(*args: str) -> str:
    out = io.StringIO()
    call_command("renewals_demo_walkthrough", *args, stdout=out)
    return out.getvalue()


def test_the_walkthrough_goes_through_a_subscriptions_life(example_site: None) -> None:
    output = walkthrough()

    user = get_user_model().objects.get(username__startswith="walkthrough-")
    assert output.startswith(f"1. Signed up as {user.username}; on the account page:")
    subscription = Subscription.objects.get(user=user)
    assert not subscription.auto_renew
    assert subscription.consents.get().revoked_via == RevokedVia.ONE_CLICK_LINK
    notice = subscription.notices.get()
    assert notice.status == NoticeStatus.SENT
    assert notice.given_in_window()
    sms, push = OutboxMessage.objects.filter(delivery__user=user).order_by("channel").reverse()
    assert (sms.channel, push.channel) == ("sms", "push")
    assert sms.body in output
    assert push.body in output
    assert f"4. Opened {push.url} on a phone that is not signed in" in output
    assert sms.body.endswith(push.url)
    events = list(subscription.audit_events.order_by("sequence"))
    assert events[0].kind == "subscribed"
    assert events[-1].kind == "auto_renewal_cancelled"
    for event in events:
        assert f"  {event.kind}  ({event.actor})" in output
    pack = evidence_pack(subscription)
    assert f"{len(pack['audit']['events'])} audit events, each linked" in output
    assert verify_audit().ok
    assert output.endswith("Walkthrough complete.\n")


def test_the_walkthrough_in_chinese(example_site: None) -> None:
    output = walkthrough("--language", "zh-hans", "--plan", "yearly")

    subscription = Subscription.objects.get(user__username__startswith="walkthrough-")
    assert subscription.terms.locale == "zh-hans"
    assert subscription.terms.service_name == "Example Plus (yearly)"
    assert "【Example Plus (yearly)】" in output  # the messages in Chinese
    assert "SMS to +86 138****8000:" in output  # the walkthrough in English
    assert "the reminder went out (accepted by a provider)" in output
    assert "Walkthrough complete." in output


def test_the_walkthrough_fails_without_the_time_machine(
    example_site: None, settings: Settings
) -> None:
    settings.DEMO_TIME_MACHINE = False
    with pytest.raises(CommandError, match="The time machine is off"):
        walkthrough()


def test_the_walkthrough_fails_without_the_database_backends(
    example_site: None, settings: Settings
) -> None:
    settings.NOTIFICATIONS = {
        **example_settings.NOTIFICATIONS,
        "BACKENDS": {
            "sms": {"BACKEND": "notifications.backends.locmem.SMSBackend"},
            "push": {"BACKEND": "notifications.backends.locmem.PushBackend"},
        },
    }
    with pytest.raises(CommandError, match="needs the database notification backends"):
        walkthrough()


def test_the_walkthrough_fails_when_the_link_does_not_turn_auto_renewal_off(
    example_site: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(one_click, "cancel_auto_renewal", lambda *args, **kwargs: None)
    with pytest.raises(CommandError, match="did not turn auto-renewal off"):
        walkthrough()


def broken_link(pack: dict[str, Any]) -> None:
    pack["audit"]["events"][1]["prev_hash"] = "0" * 64


def edited_terms(pack: dict[str, Any]) -> None:
    pack["terms"][0]["hash_verifies"] = False


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (broken_link, "The evidence pack's audit chain breaks at event 2."),
        (edited_terms, "The evidence pack's terms do not match their hashes."),
    ],
)
def test_the_walkthrough_fails_on_evidence_that_does_not_hold(
    example_site: None,
    monkeypatch: pytest.MonkeyPatch,
    damage: Callable[[dict[str, Any]], None],
    error: str,
) -> None:
    def damaged_pack(subscription: Subscription) -> dict[str, Any]:
        pack = evidence_pack(subscription)
        damage(pack)
        return pack

    monkeypatch.setattr(walkthrough_command, "evidence_pack", damaged_pack)
    with pytest.raises(CommandError, match=re.escape(error)):
        walkthrough()


def test_the_walkthrough_fails_when_the_audit_log_does_not_verify(
    example_site: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = SimpleNamespace(ok=False, problem="event 3 was edited")
    monkeypatch.setattr(walkthrough_command, "verify_audit", lambda: report)
    with pytest.raises(CommandError, match="The audit log does not verify: event 3 was edited"):
        walkthrough()


# --- manage.py and Stripe mode --------------------------------------------------------------


def test_manage_py_runs_from_anywhere(tmp_path: Path) -> None:
    manage_py = Path(example_settings.BASE_DIR) / "manage.py"
    environment = {
        key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"
    }

    result = subprocess.run(
        [sys.executable, str(manage_py), "help", "renewals_demo_walkthrough"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "sign up a new user, subscribe with consent" in result.stdout


def example_settings_with(monkeypatch: pytest.MonkeyPatch, **environment: str) -> dict[str, Any]:
    """The example's settings as they read with ``environment``."""
    for name in (
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_PRICE_MONTHLY",
        "STRIPE_PRICE_YEARLY",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(example_settings.__file__)


STRIPE_ENVIRONMENT = {
    "STRIPE_SECRET_KEY": "sk_test_123",
    "STRIPE_WEBHOOK_SECRET": "whsec_456",
    "STRIPE_PRICE_MONTHLY": "price_monthly",
    "STRIPE_PRICE_YEARLY": "price_yearly",
}


def test_without_keys_the_example_bills_locally_with_the_time_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = example_settings_with(monkeypatch)

    assert "GATEWAY" not in values["RENEWALS"]  # the default: the LocalGateway
    assert "EXAMPLE_STRIPE_PRICES" not in values
    assert values["DEMO_TIME_MACHINE"] is True
    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert values["Q_CLUSTER"]["orm"] == "default"
    assert {
        alias: backend["BACKEND"].rsplit(".", 2)[-2]
        for alias, backend in values["NOTIFICATIONS"]["BACKENDS"].items()
    } == {
        "sms": "database",
        "push": "database",
        "email": "database",
    }


def test_stripe_keys_in_the_environment_turn_stripe_mode_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = example_settings_with(monkeypatch, **STRIPE_ENVIRONMENT)

    assert values["RENEWALS"]["GATEWAY"] == {
        "BACKEND": "renewals.gateways.stripe.StripeGateway",
        "OPTIONS": {"api_key": "sk_test_123", "webhook_secret": "whsec_456"},
    }
    assert values["EXAMPLE_STRIPE_PRICES"] == {"monthly": "price_monthly", "yearly": "price_yearly"}
    assert values["DEMO_TIME_MACHINE"] is False  # Stripe's clock does not move with the demo's


def test_stripe_mode_takes_a_test_key_only(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImproperlyConfigured, match="test mode only"):
        example_settings_with(
            monkeypatch, **{**STRIPE_ENVIRONMENT, "STRIPE_SECRET_KEY": "sk_live_1"}
        )


def test_stripe_mode_names_the_missing_prices(monkeypatch: pytest.MonkeyPatch) -> None:
    environment = {**STRIPE_ENVIRONMENT, "STRIPE_PRICE_YEARLY": ""}
    with pytest.raises(ImproperlyConfigured, match="set STRIPE_PRICE_YEARLY "):
        example_settings_with(monkeypatch, **environment)


@freeze_time(NOW)
def test_in_stripe_mode_subscribing_starts_the_subscription_at_stripe(
    client: Client, demo: None, settings: Settings
) -> None:
    fake = FakeStripe.install(settings)
    settings.EXAMPLE_STRIPE_PRICES = {"monthly": "price_monthly", "yearly": "price_yearly"}
    yearly = stripe_price("price_yearly", unit_amount=23800, currency="cny", interval="year")
    fake.on("GET", "/v1/prices/price_yearly", yearly)
    fake.on("POST", "/v1/customers", stripe_customer("cus_demo"))
    period_end = NOW + dt.timedelta(days=365)
    fake.on(
        "POST",
        "/v1/subscriptions",
        stripe_subscription(
            "sub_demo",
            customer="cus_demo",
            period_start=NOW,
            period_end=period_end,
            item_price=yearly,
        ),
    )

    subscription = subscribe_to(client, "yearly")

    assert subscription.terms.stripe_price_id == "price_yearly"
    assert (subscription.gateway, subscription.gateway_subscription_id) == ("stripe", "sub_demo")
    assert subscription.gateway_customer_id == "cus_demo"
    customer_request, _price, subscription_request = fake.requests
    assert customer_request.form["payment_method"] == "pm_card_visa"
    assert customer_request.form["invoice_settings[default_payment_method]"] == "pm_card_visa"
    assert subscription_request.form["customer"] == "cus_demo"
    assert subscription_request.form["items[0][price]"] == "price_yearly"


@freeze_time(NOW)
def test_in_stripe_mode_a_refusal_is_shown_and_the_checkout_asked_again(
    client: Client, demo: None, settings: Settings
) -> None:
    fake = FakeStripe.install(settings)
    settings.EXAMPLE_STRIPE_PRICES = {"monthly": "price_monthly", "yearly": "price_yearly"}
    declined = stripe_error("Your card was declined.", type="card_error", code="card_declined")
    fake.on("POST", "/v1/customers", declined, status=402)
    client.login(username="demo", password="demo")
    url = reverse("subscribe", args=["yearly"])

    response = client.post(url, ticked(client.get(url)))

    assert response.status_code == 200
    assert "Your card was declined." in response.text
    assert not response.context["form"].is_bound
    assert not Subscription.objects.exists()
