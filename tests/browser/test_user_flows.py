"""The pages as a new user meets them, in chromium: the example project's plans and checkout,
and the package's manage page, one-click link and statutory cancellation, in English and in
Chinese.

The tests act through roles and accessible names, as assistive technology does, and every
page served is audited (see ``conftest.new_context``: no script, every control named).
Helpers take ``_``, the translation of the page's language: ``str`` for English, whose
messages are their msgids, or :func:`zh_hans`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext
from playwright.sync_api import BrowserContext, Locator, Page, expect
from pytest_django import Settings

from example_project.demo_clock import DemoClock
from example_project.plans import PLANS
from notifications.models import OutboxMessage
from renewals.models import AuditEvent, Consent, ContractDeclaration, RevokedVia, Subscription

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.urls("example_project.urls")]

MONTHLY = PLANS["monthly"]
SERVICE = MONTHLY["service_name"]
NewContext = Callable[..., BrowserContext]
Translate = Callable[[str], str]


def zh_hans(message: str) -> str:
    """``message`` as the zh-hans pages show it; one not translated fails the test."""
    with translation.override("zh-hans"):
        translated = gettext(message)
    assert translated != message, f"No zh-hans translation of {message!r}"
    return translated


def shown_at(subscription: Subscription, instant: dt.datetime, language: str = "en") -> str:
    """How the pages show ``instant``: date and time in the subscription's zone, in the
    format of ``language``."""
    with translation.override(language):
        return date_format(subscription.local(instant), "DATETIME_FORMAT")


def open_checkout(page: Page, _: Translate = str) -> Locator:
    """From the plans page, choose the monthly plan and sign in as the demo user; the
    consent box."""
    page.goto(reverse("plans"))
    page.get_by_role("link", name=_("Subscribe to %(service)s") % {"service": SERVICE}).click()
    page.get_by_label(capfirst(_("username"))).fill("demo")
    page.get_by_label(_("Password")).fill("demo")
    page.get_by_role("button", name=_("Log in")).click()
    heading = _("Subscribe to %(service)s") % {"service": SERVICE}
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    return page.get_by_role("checkbox", name=_(MONTHLY["renewal_wording"]))


def subscribe(page: Page, _: Translate = str) -> Subscription:
    """Subscribe to the monthly plan, ticking the box; the subscription."""
    open_checkout(page, _).check()
    page.get_by_role("button", name=_("Subscribe"), exact=True).click()
    expect(
        page.get_by_text(_("You subscribed to %(service)s.") % {"service": SERVICE})
    ).to_be_visible()
    return Subscription.objects.get()


def assert_refused_unticked(page: Page, box: Locator, button: Locator) -> None:
    """Pressing ``button`` with ``box`` unticked is refused by the browser (the box is
    required), and by the server when a browser does not check."""
    button.click()
    expect(box).not_to_be_checked()
    assert box.evaluate("box => box.validationMessage")  # chromium shows it at the box
    box.evaluate("box => { box.form.noValidate = true }")
    button.click()
    expect(page.get_by_text("Tick the box to agree to automatic renewal.")).to_be_visible()
    expect(box).not_to_be_checked()


def remind_now(page: Page, _: Translate = str) -> str:
    """Press the time machine's button, as a newcomer does: the demo's clock moves to the
    reminder of demo's next renewal, which goes out, and the inbox shows it. The one-click
    link in the SMS, checked to be the push's too and a link in the inbox."""
    page.get_by_role("button", name=_("Time machine: jump to the next reminder")).click()
    expect(page.get_by_role("heading", name=_("Inbox"))).to_be_visible()
    sms = OutboxMessage.objects.get(channel="sms")
    link = re.search(r"https?://[^\s\uff1a]+/c/\S+/", sms.body)
    assert link, sms.body
    assert OutboxMessage.objects.get(channel="push").url == link.group()
    expect(page.get_by_role("link", name=link.group())).to_have_count(2)  # the SMS, the push
    return link.group()


def test_subscribing_needs_the_box_ticked(site: str, page: Page) -> None:
    box = open_checkout(page)
    expect(box).not_to_be_checked()

    assert_refused_unticked(page, box, page.get_by_role("button", name="Subscribe", exact=True))
    assert not Subscription.objects.exists()
    assert not Consent.objects.exists()

    box.check()
    page.get_by_role("button", name="Subscribe", exact=True).click()

    expect(page.get_by_role("heading", name="Your subscriptions")).to_be_visible()
    expect(page.get_by_text(f"You subscribed to {SERVICE}.")).to_be_visible()
    expect(page.get_by_role("heading", name=SERVICE)).to_be_visible()
    subscription = Subscription.objects.get()
    assert subscription.user.username == "demo"
    assert subscription.auto_renew
    assert subscription.consents.get().control_initially_unticked


def test_the_reminder_link_turns_auto_renewal_off(
    site: str, page: Page, new_context: NewContext, demo_clock: DemoClock
) -> None:
    subscription = subscribe(page)
    link = remind_now(page)
    assert link.startswith(f"{site}/c/")
    phone = new_context().new_page()  # the phone the SMS went to: nobody is signed in

    phone.goto(link)

    expect(phone.get_by_role("heading", name="Turn off auto-renewal?")).to_be_visible()
    expect(phone.get_by_role("main").get_by_role("button")).to_have_count(1)
    assert Subscription.objects.get(pk=subscription.pk).auto_renew  # opening it changes nothing

    phone.get_by_role("button", name="Turn off auto-renewal").click()

    expect(phone.get_by_role("heading", name="Auto-renewal is off")).to_be_visible()
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    assert subscription.consents.get().revoked_via == RevokedVia.ONE_CLICK_LINK
    switched_off = AuditEvent.objects.get(kind="auto_renewal_cancelled").occurred_at
    main = phone.get_by_role("main")
    zone = subscription.time_zone
    assert subscription.next_renewal_at is not None
    expect(main).to_contain_text(f"{shown_at(subscription, switched_off)} ({zone})")
    expect(main).to_contain_text(f"{shown_at(subscription, subscription.next_renewal_at)} ({zone})")

    phone.goto(link)

    expect(phone.get_by_role("heading", name="Auto-renewal is off")).to_be_visible()
    expect(phone.get_by_role("main").get_by_role("button")).to_have_count(0)


def test_auto_renewal_off_then_on_again_with_fresh_consent(site: str, page: Page) -> None:
    subscription = subscribe(page)

    page.get_by_role("button", name="Turn off auto-renewal").click()

    expect(page.get_by_text(f"Auto-renewal of {SERVICE} is off.")).to_be_visible()
    assert not Subscription.objects.get(pk=subscription.pk).auto_renew

    page.get_by_role("link", name="Turn on auto-renewal").click()

    expect(page.get_by_role("heading", name=f"Turn on auto-renewal of {SERVICE}")).to_be_visible()
    expect(page.get_by_text("How to cancel:")).to_be_visible()  # the disclosure
    box = page.get_by_role("checkbox", name=MONTHLY["renewal_wording"])
    expect(box).not_to_be_checked()
    button = page.get_by_role("button", name="Turn on auto-renewal")
    assert_refused_unticked(page, box, button)
    assert not subscription.consents.filter(revoked_at__isnull=True).exists()

    box.check()
    button.click()

    expect(page.get_by_text(f"Auto-renewal of {SERVICE} is on.")).to_be_visible()
    expect(page.get_by_role("button", name="Turn off auto-renewal")).to_be_visible()
    subscription.refresh_from_db()
    assert subscription.auto_renew
    assert subscription.consents.count() == 2
    fresh = subscription.consents.get(revoked_at__isnull=True)
    assert fresh.form_id == "renewals:auto_renew_on"
    assert fresh.control_initially_unticked


def test_the_german_cancellation_button(site: str, page: Page, settings: Settings) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "DEFAULT_POLICY": "de"}
    subscription = subscribe(page)
    assert subscription.policy == "de"

    page.get_by_role("link", name="Verträge hier kündigen").click()  # on the manage page

    expect(page.get_by_role("heading", name="Cancel a contract")).to_be_visible()
    contract = f"{SERVICE}, contract {subscription.pk}"
    expect(page.get_by_role("radio", name=contract)).to_be_checked()
    expect(page.get_by_label("Full name")).to_have_value("demo")
    expect(page.get_by_label("Email address")).to_have_value("demo@example.com")
    expect(page.get_by_label("Mobile phone number")).not_to_be_empty()
    expect(page.get_by_role("radio", name="Ordinary cancellation", exact=True)).to_be_checked()
    expect(
        page.get_by_role("radio", name="At the earliest possible date", exact=True)
    ).to_be_checked()

    page.get_by_role("button", name="jetzt kündigen").click()

    expect(page.get_by_role("heading", name="We have received your cancellation")).to_be_visible()
    received = shown_at(subscription, ContractDeclaration.objects.get().received_at)
    received = f"Received on {received} ({subscription.time_zone})."
    expect(page.get_by_text(received)).to_be_visible()
    expect(page.get_by_text("by pressing the button “jetzt kündigen”")).to_be_visible()
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    assert subscription.consents.get().revoked_via == RevokedVia.CANCELLATION_BUTTON

    with page.expect_download() as download:
        page.get_by_role("link", name="download the declaration as a text file").click()
    saved = download.value.path().read_text()
    assert received in saved
    assert f"Contract number: {subscription.pk}" in saved


def test_the_reminder_link_in_chinese(
    site: str, page: Page, new_context: NewContext, demo_clock: DemoClock
) -> None:
    page.goto(reverse("plans"))
    page.get_by_label("Language").select_option(label="简体中文")
    page.get_by_role("button", name="Change language").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    subscription = subscribe(page, zh_hans)
    link = remind_now(page, zh_hans)
    assert re.search("[\u4e00-\u9fff]", OutboxMessage.objects.get(channel="sms").body)
    phone = new_context(locale="zh-CN").new_page()  # a phone set to Chinese

    phone.goto(link)

    expect(phone.get_by_role("heading", name=zh_hans("Turn off auto-renewal?"))).to_be_visible()
    phone.get_by_role("button", name=zh_hans("Turn off auto-renewal")).click()

    expect(phone.get_by_role("heading", name=zh_hans("Auto-renewal is off"))).to_be_visible()
    switched_off = AuditEvent.objects.get(kind="auto_renewal_cancelled").occurred_at
    expect(phone.get_by_role("main")).to_contain_text(
        shown_at(subscription, switched_off, "zh-hans")
    )
    subscription.refresh_from_db()
    assert not subscription.auto_renew

    page.goto(reverse("renewals:manage"))

    expect(page.get_by_role("heading", name=zh_hans("Your subscriptions"))).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text("自动续费")
    auto_renewal = page.locator(f"dt:text-is('{zh_hans('Auto-renewal')}') + dd")
    expect(auto_renewal).to_have_text(zh_hans("Off"))
