"""The one-click cancel link: a short signed token, a GET that changes nothing, a POST that
switches auto-renewal off once, clear pages for bad links, and a rate limit."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from freezegun import freeze_time
from pytest_django import Settings

from notifications.backends import locmem
from notifications.messages import PushMessage, SMSMessage
from notifications.models import Device
from renewals import ratelimit
from renewals.checks import check_settings
from renewals.conf import renewals_settings
from renewals.exceptions import LinkExpired, LinkTampered
from renewals.links import cancel_url
from renewals.models import AuditEvent, RenewalNotice, RevokedVia, Status, Subscription
from renewals.services import cancel_auto_renewal
from renewals.services.sweep import send_due_notices
from renewals.tokens import one_click_token, read_one_click_token

from .factories import PHONE, make_consented_subscription, make_subscription, make_user

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
PLANNED_AT = dt.datetime(2027, 2, 1, tzinfo=dt.UTC)
RENEWAL = dt.datetime(2027, 3, 10, 9, tzinfo=SHANGHAI)
NOW = dt.datetime(2027, 3, 4, 2, tzinfo=dt.UTC)  # 10 a.m. in Shanghai: the reminder is out
RENEWAL_SHOWN = "March 10, 2027, 9 a.m. (Asia/Shanghai)"  # 1 a.m. in UTC
NOW_SHOWN = "March 4, 2027, 10 a.m. (Asia/Shanghai)"
MANAGE = "/account/subscriptions/"
MANAGE_LINK = f'href="{MANAGE}"'
#: What no page for a bad link may show: the service, its price, any date of it.
SUBSCRIPTION_DATA = ("Example Plus", "25.00", "2027", "Asia/Shanghai")


@pytest.fixture(autouse=True)
def _manage_page(settings: Settings) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "MANAGE_URL": MANAGE}


def reminded(**fields: Any) -> RenewalNotice:
    """The notice planned for a consenting subscriber's renewal at ``RENEWAL``."""
    subscription = make_consented_subscription(
        at=PLANNED_AT, next_renewal_at=RENEWAL, time_zone="Asia/Shanghai", **fields
    )
    return subscription.notices.get()


@pytest.fixture
def notice() -> RenewalNotice:
    return reminded()


def link(notice: RenewalNotice) -> str:
    return reverse("renewals:one_click_cancel", args=[one_click_token(notice)])


def cancellations() -> int:
    return AuditEvent.objects.filter(kind="auto_renewal_cancelled").count()


def assert_unchanged(notice: RenewalNotice) -> None:
    subscription = notice.subscription
    subscription.refresh_from_db()
    assert subscription.auto_renew
    assert cancellations() == 0
    assert not subscription.consents.filter(revoked_at__isnull=False).exists()


# --- the token ---------------------------------------------------------------------------


@freeze_time(NOW)
def test_a_token_reads_back_as_its_notice(notice: RenewalNotice) -> None:
    assert read_one_click_token(one_click_token(notice)) == notice


@freeze_time(NOW)
def test_the_link_is_short_and_needs_no_escaping() -> None:
    large = RenewalNotice(pk=2**31 - 1, subscription_id=2**31 - 2)
    url = cancel_url(large)
    assert len(url) < 80, url
    token = url.removeprefix("https://shop.example/c/").removesuffix("/")
    assert re.fullmatch(r"[A-Za-z0-9._-]+", token)


@freeze_time(NOW)
def test_links_keep_working_across_a_secret_key_rotation(
    client: Client, notice: RenewalNotice, settings: Settings
) -> None:
    url = link(notice)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key", [settings.SECRET_KEY]
    assert client.get(url).status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(url).status_code == 400


def test_every_reminder_carries_a_link_of_its_own(notice: RenewalNotice) -> None:
    other = reminded()
    with freeze_time(NOW):
        assert one_click_token(notice) != one_click_token(other)


# --- GET: nothing changes ----------------------------------------------------------------


@freeze_time(NOW)
@pytest.mark.parametrize("method", ["get", "head"])
def test_opening_the_link_changes_nothing(
    client: Client, notice: RenewalNotice, method: str
) -> None:
    response = getattr(client, method)(link(notice))
    assert response.status_code == 200
    assert_unchanged(notice)


@freeze_time(NOW)
def test_the_page_shows_what_stops_and_when_in_the_users_zone(
    client: Client, notice: RenewalNotice
) -> None:
    page = client.get(link(notice)).text
    assert "Turn off auto-renewal?" in page
    assert "Example Plus" in page
    assert "you will not be charged 25.00 CNY for another term" in page
    assert RENEWAL_SHOWN in page
    form = r'<form method="post">\s*<input type="hidden" name="csrfmiddlewaretoken"'
    assert re.search(form, page)
    assert MANAGE_LINK in page
    assert "<script" not in page


@freeze_time(NOW)
def test_the_pages_are_not_cached_and_keep_the_token_from_other_sites(
    client: Client, notice: RenewalNotice
) -> None:
    response = client.get(link(notice))
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"


@freeze_time(NOW)
def test_other_methods_are_refused(client: Client, notice: RenewalNotice) -> None:
    assert client.put(link(notice)).status_code == 405
    assert client.delete(link(notice)).status_code == 405
    assert_unchanged(notice)


# --- POST: auto-renewal off, once ---------------------------------------------------------


@freeze_time(NOW)
def test_posting_switches_auto_renewal_off_and_confirms(
    client: Client, notice: RenewalNotice
) -> None:
    url = link(notice)
    response = client.post(url)

    assert response.status_code == 302
    assert response["Location"] == url
    subscription = notice.subscription
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    consent = subscription.consents.get()
    assert consent.revoked_at == NOW
    assert consent.revoked_via == RevokedVia.ONE_CLICK_LINK
    event = AuditEvent.objects.get(kind="auto_renewal_cancelled")
    assert event.actor == f"link:notice:{notice.pk}"
    assert event.data["via"] == "one_click_link"

    confirmation = " ".join(client.get(url).text.split())
    assert "<h1>Auto-renewal is off</h1>" in confirmation
    assert "<dd>Example Plus</dd>" in confirmation
    assert f"Auto-renewal switched off</dt> <dd>{NOW_SHOWN}</dd>" in confirmation
    assert f"The service runs until</dt> <dd>{RENEWAL_SHOWN}</dd>" in confirmation
    assert "csrfmiddlewaretoken" not in confirmation  # no button: nothing left to do


@freeze_time(NOW)
def test_posting_again_is_harmless(client: Client, notice: RenewalNotice) -> None:
    url = link(notice)
    first = client.post(url, follow=True)
    with freeze_time(NOW + dt.timedelta(hours=1)):
        again = client.post(url, follow=True)

    assert cancellations() == 1
    assert again.status_code == 200
    assert again.text == first.text  # the same confirmation, still from the first time
    assert NOW_SHOWN in again.text


@freeze_time(NOW)
def test_a_link_opened_after_switching_off_elsewhere_shows_when(
    client: Client, notice: RenewalNotice
) -> None:
    with freeze_time(NOW - dt.timedelta(days=1)):
        cancel_auto_renewal(notice.subscription, actor=None, via=RevokedVia.MANAGE_PAGE)
    page = client.get(link(notice)).text
    assert "Auto-renewal is off" in page
    assert "March 3, 2027, 10 a.m. (Asia/Shanghai)" in page
    assert "csrfmiddlewaretoken" not in page


@freeze_time(NOW)
@pytest.mark.parametrize("status", [Status.CANCELED, Status.EXPIRED])
def test_an_ended_subscription_says_so_and_is_left_alone(
    client: Client, notice: RenewalNotice, status: Status
) -> None:
    Subscription.objects.filter(pk=notice.subscription_id).update(status=status)
    for response in (client.get(link(notice)), client.post(link(notice))):
        assert response.status_code == 200
        assert "This subscription has ended" in response.text
        assert "Your subscription to Example Plus has ended" in response.text
        assert "csrfmiddlewaretoken" not in response.text
    assert_unchanged(notice)


@freeze_time(NOW)
def test_a_post_without_the_csrf_token_is_refused(notice: RenewalNotice) -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post(link(notice)).status_code == 403
    assert_unchanged(notice)

    client.get(link(notice))  # the page sets the CSRF cookie its form posts with
    token = client.cookies["csrftoken"].value
    assert client.post(link(notice), {"csrfmiddlewaretoken": token}).status_code == 302
    assert cancellations() == 1


# --- links that do not work ---------------------------------------------------------------


def _changed_character(notice: RenewalNotice, other: RenewalNotice) -> str:
    token = one_click_token(notice)
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def _cut_short(notice: RenewalNotice, other: RenewalNotice) -> str:
    return one_click_token(notice)[:-4]


def _other_notices_signature(notice: RenewalNotice, other: RenewalNotice) -> str:
    ids = one_click_token(notice).split(".")[:2]
    return ".".join(ids + one_click_token(other).split(".")[2:])


def _swapped_ids(notice: RenewalNotice, other: RenewalNotice) -> str:
    subscription_id, notice_id, *signed = one_click_token(other).split(".")
    assert subscription_id != notice_id
    return ".".join([notice_id, subscription_id, *signed])


def _signed_for_a_notice_of_another_subscription(
    notice: RenewalNotice, other: RenewalNotice
) -> str:
    return one_click_token(RenewalNotice(pk=other.pk, subscription_id=notice.subscription_id))


def _signed_for_no_notice(notice: RenewalNotice, other: RenewalNotice) -> str:
    return one_click_token(RenewalNotice(pk=other.pk + 1000, subscription_id=other.pk + 1000))


@freeze_time(NOW)
@pytest.mark.parametrize(
    "tamper",
    [
        _changed_character,
        _cut_short,
        _other_notices_signature,
        _swapped_ids,
        _signed_for_a_notice_of_another_subscription,
        _signed_for_no_notice,
    ],
)
def test_a_tampered_link_is_refused_without_showing_anything(
    client: Client, notice: RenewalNotice, tamper: Callable[[RenewalNotice, RenewalNotice], str]
) -> None:
    make_subscription()  # one without notices: the other's ids differ from each other
    other = reminded()
    token = tamper(notice, other)
    with pytest.raises(LinkTampered):
        read_one_click_token(token)
    url = reverse("renewals:one_click_cancel", args=[token])
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 400
        assert "This link does not work" in response.text
        assert MANAGE_LINK in response.text
        assert not [data for data in SUBSCRIPTION_DATA if data in response.text]
    assert_unchanged(notice)
    assert_unchanged(other)


def test_the_link_works_until_seven_days_after_the_renewal(
    client: Client, notice: RenewalNotice
) -> None:
    with freeze_time(NOW):
        url = link(notice)
    expires_at = RENEWAL + dt.timedelta(days=7)

    with freeze_time(expires_at - dt.timedelta(seconds=1)):
        assert client.get(url).status_code == 200
    for at in (expires_at, expires_at + dt.timedelta(days=30)):
        with freeze_time(at):
            for response in (client.get(url), client.post(url)):
                assert response.status_code == 410
                assert "This link has expired" in response.text
                assert MANAGE_LINK in response.text
                assert not [data for data in SUBSCRIPTION_DATA if data in response.text]
            with pytest.raises(LinkExpired) as expired:
                read_one_click_token(url.split("/")[-2])
            assert expired.value.expired_at == expires_at
    assert_unchanged(notice)


# --- the rate limit -----------------------------------------------------------------------


@freeze_time(NOW)
def test_one_link_is_limited(client: Client, notice: RenewalNotice, settings: Settings) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "LINK_RATE_LIMIT": {"TOKEN": (3, 60)}}
    url = link(notice)
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]

    with freeze_time(NOW + dt.timedelta(seconds=15)):
        refused = client.post(url)
        other_link = client.get(link(reminded()))
    assert refused.status_code == 429
    assert refused["Retry-After"] == "45"  # the window began at NOW
    assert "Please try again in 45 seconds." in refused.text
    assert not [data for data in SUBSCRIPTION_DATA if data in refused.text]
    assert_unchanged(notice)
    assert other_link.status_code == 200

    with freeze_time(NOW + dt.timedelta(seconds=60)):
        assert client.get(url).status_code == 200


@freeze_time(NOW)
def test_one_address_is_limited_whatever_the_links(
    client: Client, notice: RenewalNotice, settings: Settings
) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "LINK_RATE_LIMIT": {"IP": (2, 60)}}
    guesses = [reverse("renewals:one_click_cancel", args=[f"guess{n}"]) for n in range(2)]
    assert [client.get(url).status_code for url in guesses] == [400, 400]

    assert client.get(link(notice)).status_code == 429
    assert client.get(link(notice), REMOTE_ADDR="198.51.100.9").status_code == 200


@freeze_time(NOW)
def test_the_rate_limit_can_be_switched_off(
    client: Client, notice: RenewalNotice, settings: Settings
) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "LINK_RATE_LIMIT": {"TOKEN": None, "IP": None}}
    assert {client.get(link(notice)).status_code for _ in range(80)} == {200}


def test_a_count_evicted_from_the_cache_lets_the_request_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cache, "add", lambda *args, **kwargs: False)  # gone at once
    assert [ratelimit.hit("test", "key", (1, 60)) for _ in range(3)] == [None, None, None]


def test_the_rate_limit_setting_keeps_the_defaults_it_does_not_name(settings: Settings) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "LINK_RATE_LIMIT": {"IP": (100, 10)}}
    assert renewals_settings.LINK_RATE_LIMIT == {"TOKEN": (10, 60), "IP": (100, 10)}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"TOKEN": (0, 60)}, r"RENEWALS\['LINK_RATE_LIMIT'\]\['TOKEN'\] must be an integer >= 1"),
        ({"IP": 60}, r"RENEWALS\['LINK_RATE_LIMIT'\]\['IP'\] must be None or \(max count"),
        ({"USER": (1, 60)}, r"unknown keys \['USER'\]; use 'TOKEN' and 'IP'"),
        ((10, 60), r"RENEWALS\['LINK_RATE_LIMIT'\] must be a dict"),
    ],
)
def test_an_invalid_rate_limit_setting_names_the_key(
    settings: Settings, value: object, message: str
) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "LINK_RATE_LIMIT": value}
    (error,) = check_settings()
    assert error.id == "renewals.E011"
    assert re.search(message, error.msg)


# --- from the reminder to the confirmation -----------------------------------------------


@pytest.mark.usefixtures("reachable_users")
def test_the_reminders_link_cancels_its_subscription(client: Client) -> None:
    user = make_user(first_name=PHONE)
    Device.objects.create(user=user, platform="android", provider="fcm", token="tok")
    notice = reminded(user=user)
    with freeze_time(notice.send_at):
        send_due_notices()
    [sms] = [m for m in locmem.outbox if isinstance(m, SMSMessage)]
    [push] = [m for m in locmem.outbox if isinstance(m, PushMessage)]
    found = re.search(r"https://shop\.example/c/\S+/", sms.body)
    assert found is not None
    url = found[0]
    assert push.url == url

    with freeze_time(NOW):
        path = url.removeprefix("https://shop.example")
        assert "Example Plus" in client.get(path).text
        client.post(path)
    notice.subscription.refresh_from_db()
    assert not notice.subscription.auto_renew
