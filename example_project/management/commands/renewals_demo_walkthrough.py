"""Demo only: ``manage.py renewals_demo_walkthrough``, a subscription's whole life in one run.

As a newcomer would click through it, each step through the site's pages, with Django's test
client (a browser's requests, CSRF tokens included, on the host of ``RENEWALS["BASE_URL"]``):

1. a new user (a name of its own) signs up, and gives a phone number and a push device on the
   account page;
2. subscribes to a plan with the consent box ticked;
3. presses the time machine's button: the demo's clock moves to the reminder, and the notice
   sweep sends it;
4. the SMS and the push the database backends stored are printed;
5. the one-click link in the SMS is opened on a "phone" that is not signed in, and its
   button pressed: auto-renewal is off;
6. the subscription's timeline (its audit events) is printed, and its evidence pack checked:
   the terms' hashes, the audit chain's links, and the whole audit log verified.

A step that fails stops the run with an error naming it (exit status 1). Needs the example's
settings: the time machine on and the database notification backends. CI runs it as a smoke
test (``tests/test_example_project.py``).
"""

from __future__ import annotations

import re
import secrets
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation

from example_project.plans import PLANS
from example_project.time_machine import as_text, messages_of
from renewals.conf import renewals_settings
from renewals.models import NoticeStatus, RevokedVia, Subscription
from renewals.models.audit import GENESIS
from renewals.services import evidence_pack, verify_audit

#: Where the walkthrough's user is reached: a fictional number and a pretend phone's token.
PHONE = "+86 138 0013 8000"
TIME_ZONE = "Asia/Shanghai"
GIVEN = (NoticeStatus.SENT, NoticeStatus.DELIVERED)


class StepFailed(CommandError):
    """A step of the walkthrough did not do what it should."""


class Command(BaseCommand):
    help = (
        "DEMO ONLY: sign up a new user, subscribe with consent, move the demo's clock to the "
        "reminder, print the SMS and push, turn auto-renewal off through the one-click link, "
        "print the timeline and check the evidence pack."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--plan", choices=sorted(PLANS), default="monthly")
        parser.add_argument(
            "--language",
            choices=[code for code, _name in settings.LANGUAGES],
            default=settings.LANGUAGE_CODE,
            help="The language the pages and messages are in.",
        )

    def handle(self, *args: Any, plan: str, language: str, **options: Any) -> None:
        host = urlsplit(renewals_settings.BASE_URL or "").netloc or "localhost"
        browser = Client(enforce_csrf_checks=True, HTTP_HOST=host, HTTP_ACCEPT_LANGUAGE=language)
        username = self.sign_up(browser)
        subscription = self.subscribe(browser, username, plan)
        link = self.remind(browser, subscription)
        self.turn_off_by_link(link, host, language, subscription)
        self.timeline(subscription)
        self.check_evidence(subscription)
        self.stdout.write(self.style.SUCCESS("Walkthrough complete."))

    def sign_up(self, browser: Client) -> str:
        username = f"walkthrough-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        fields = {"username": username, "password1": password, "password2": password}
        post(browser, reverse("signup"), fields, expect=reverse("account"))
        account = {
            "phone_number": PHONE,
            "time_zone": TIME_ZONE,
            "email": f"{username}@example.com",
        }
        post(browser, reverse("account"), account, expect=reverse("account"))
        token = f"walkthrough-device-{secrets.token_hex(8)}"
        device = {"platform": "android", "provider": "fcm", "token": token}
        post(
            browser, reverse("add_device"), device, on=reverse("account"), expect=reverse("account")
        )
        self.stdout.write(
            f"1. Signed up as {username}; on the account page: phone {PHONE}, time zone "
            f"{TIME_ZONE}, and a push device."
        )
        return username

    def subscribe(self, browser: Client, username: str, plan: str) -> Subscription:
        url = reverse("subscribe", args=[plan])
        post(browser, url, {"auto_renew_consent": "yes"}, expect=reverse("renewals:manage"))
        subscription = (
            Subscription.objects.filter(user__username=username).select_related("terms").first()
        )
        renewal_at = subscription.next_renewal_at if subscription else None
        if subscription is None or renewal_at is None or not subscription.auto_renew:
            raise StepFailed("Subscribing started no subscription renewing automatically.")
        consent = subscription.consents.get()
        next_renewal = subscription.local(renewal_at)
        self.stdout.write(
            f"2. Subscribed to {subscription.terms.service_name} with the box ticked: "
            f"subscription {subscription.pk}, consent {consent.pk} to terms "
            f"{consent.terms_hash[:12]}…, next renewal {next_renewal:%Y-%m-%d %H:%M} "
            f"({subscription.time_zone})."
        )
        return subscription

    def remind(self, browser: Client, subscription: Subscription) -> str:
        """Press the time machine's button; print the reminder's messages; the SMS's link."""
        if not getattr(settings, "DEMO_TIME_MACHINE", False):
            raise StepFailed("The time machine is off: use the example's settings.")
        post(browser, reverse("time_machine"), {}, on=reverse("inbox"), expect=reverse("inbox"))
        notice = subscription.notices.filter(status__in=GIVEN).order_by("pk").last()
        if notice is None:
            states = ", ".join(n.get_status_display() for n in subscription.notices.all())
            raise StepFailed(f"The time machine sent no reminder (notices: {states or 'none'}).")
        messages = list(messages_of(notice))
        sms = next((message for message in messages if message.channel == "sms"), None)
        link = re.search(r"https?://\S+/c/[^\s/]+/", sms.body) if sms else None
        if sms is None or link is None:
            raise StepFailed(
                "No SMS with a one-click link was stored: the walkthrough needs the database "
                "notification backends (as in example_project.settings)."
            )
        now = subscription.local(timezone.now())
        self.stdout.write(
            f"3. Time machine: the demo clock moved to {now:%Y-%m-%d %H:%M} "
            f"({subscription.time_zone}), and the reminder went out "
            f"({notice.get_status_display()}):"
        )
        for message in messages:
            self.stdout.write("   " + as_text(message).replace("\n", "\n   "))
        return link.group()

    def turn_off_by_link(
        self, link: str, host: str, language: str, subscription: Subscription
    ) -> None:
        phone = Client(enforce_csrf_checks=True, HTTP_HOST=host, HTTP_ACCEPT_LANGUAGE=language)
        path = urlsplit(link).path
        post(phone, path, {}, expect=path)
        subscription.refresh_from_db()
        consent = subscription.consents.get()
        if subscription.auto_renew or consent.revoked_via != RevokedVia.ONE_CLICK_LINK:
            raise StepFailed("The one-click link did not turn auto-renewal off.")
        self.stdout.write(
            f"4. Opened {link} on a phone that is not signed in and pressed its button: "
            f"auto-renewal is off, the consent revoked via {consent.get_revoked_via_display()}."
        )

    def timeline(self, subscription: Subscription) -> None:
        self.stdout.write(f"5. Timeline of subscription {subscription.pk} (its audit events):")
        for event in subscription.audit_events.order_by("sequence"):
            at = subscription.local(event.occurred_at)
            self.stdout.write(f"   {at:%Y-%m-%d %H:%M:%S}  {event.kind}  ({event.actor})")

    def check_evidence(self, subscription: Subscription) -> None:
        pack = evidence_pack(subscription)
        if not all(terms["hash_verifies"] for terms in pack["terms"]):
            raise StepFailed("The evidence pack's terms do not match their hashes.")
        previous = GENESIS
        for sequence, event in enumerate(pack["audit"]["events"], start=1):
            if event["sequence"] != sequence or event["prev_hash"] != previous:
                raise StepFailed(f"The evidence pack's audit chain breaks at event {sequence}.")
            previous = event["hash"]
        report = verify_audit()
        if not report.ok:
            raise StepFailed(f"The audit log does not verify: {report.problem}")
        self.stdout.write(
            f"6. Evidence pack: terms, {len(pack['consents'])} consent(s), "
            f"{len(pack['notices'])} notice(s) and {len(pack['audit']['events'])} audit events, "
            f"each linked to the one before; the audit log verifies ({report.events} events "
            f"in {report.chains} chains)."
        )


def post(
    browser: Client, path: str, data: dict[str, str], *, expect: str, on: str | None = None
) -> None:
    """Open the page ``on`` (default: ``path``) and post ``data`` with its hidden fields (the
    CSRF token too) to ``path``, as a browser submits a form; the answer must redirect to
    ``expect``."""
    # The pages answer in the browser's language; the walkthrough speaks its own.
    with translation.override(translation.get_language()):
        page = browser.get(on or path)
        if page.status_code != 200:
            raise StepFailed(f"GET {on or path} answered {page.status_code}.")
        response = browser.post(path, {**hidden_fields(page.content.decode()), **data})
    location = response.get("Location", "")
    if response.status_code != 302 or urlsplit(location).path != expect:
        raise StepFailed(
            f"POST {path} answered {response.status_code} {location}, not a redirect to {expect}."
        )


class _HiddenFields(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.fields.setdefault(str(values["name"]), values.get("value") or "")


def hidden_fields(html: str) -> dict[str, str]:
    """The hidden inputs of ``html`` by name (the first of each name)."""
    parser = _HiddenFields()
    parser.feed(html)
    return parser.fields
