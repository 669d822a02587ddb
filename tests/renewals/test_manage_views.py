"""The manage page: a user's own subscriptions, auto-renewal off in one POST, and on again
only with fresh consent to the current terms."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils.formats import date_format
from freezegun import freeze_time
from pytest_django import DjangoAssertNumQueries

from renewals.exceptions import IllegalTransition
from renewals.forms import ConsentForm
from renewals.links import manage_url
from renewals.models import (
    AuditEvent,
    Consent,
    NoticeStatus,
    RenewalTerms,
    RevokedVia,
    Status,
    Subscription,
)
from renewals.types import User

from ..types import ClientResponse
from .factories import (
    FIRST_RENEWAL,
    make_consented_subscription,
    make_subscription,
    make_terms,
    make_user,
)

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
CONSENTED_AT = dt.datetime(2027, 2, 1, 1, 30, tzinfo=dt.UTC)  # 9:30 a.m. in Shanghai
RENEWAL = FIRST_RENEWAL  # 9 a.m. in Shanghai: the shared subscription's, and consenting()'s
NOW = dt.datetime(2027, 3, 1, 2, tzinfo=dt.UTC)
MANAGE = reverse("renewals:manage")


@pytest.fixture(autouse=True)
def _now() -> Iterator[None]:
    with freeze_time(NOW):
        yield


def consenting(user: User | None = None, **fields: Any) -> Subscription:
    """Another subscription with auto-renewal on, consent on record since ``CONSENTED_AT``
    and its reminder planned, renewing at ``RENEWAL``."""
    return make_consented_subscription(
        at=CONSENTED_AT, user=user, next_renewal_at=RENEWAL, time_zone="Asia/Shanghai", **fields
    )


@pytest.fixture
def owner(client: Client, subscription: Subscription) -> Client:
    client.force_login(subscription.user)
    return client


@pytest.fixture
def switched_off(owner: Client, subscription: Subscription) -> Subscription:
    owner.post(off_url(subscription), follow=True)  # shows, so uses up, its message
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    return subscription


def off_url(subscription: Subscription) -> str:
    return reverse("renewals:auto_renew_off", args=[subscription.pk])


def on_url(subscription: Subscription) -> str:
    return reverse("renewals:auto_renew_on", args=[subscription.pk])


def shown(instant: dt.datetime) -> str:
    return date_format(instant.astimezone(SHANGHAI), "DATETIME_FORMAT")


def said(response: ClientResponse) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def ticked(page: ClientResponse, **overrides: str) -> dict[str, str]:
    """What a browser posts from the consent form ``page`` shows, with the box ticked."""
    form = page.context["form"]
    return {
        "auto_renew_consent": "yes",
        "disclosure_token": form["disclosure_token"].initial,
        "request_key": form["request_key"].initial,
        **overrides,
    }


def test_the_default_manage_url_is_this_page() -> None:
    assert MANAGE == "/subscriptions/"
    assert manage_url() == "https://shop.example/subscriptions/"


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize("url", [lambda s: MANAGE, off_url, on_url], ids=["list", "off", "on"])
def test_every_route_needs_a_login(
    client: Client, subscription: Subscription, url: Callable[[Subscription], str], method: str
) -> None:
    response = getattr(client, method)(url(subscription))
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")
    subscription.refresh_from_db()
    assert subscription.auto_renew


# --- the list ------------------------------------------------------------------------------


def test_the_page_shows_each_subscription_with_its_facts(
    owner: Client, subscription: Subscription
) -> None:
    notice = subscription.notices.get()
    page = owner.get(MANAGE)

    assert page.status_code == 200
    assert page["Cache-Control"].startswith("max-age=0")
    assert "Example Plus" in page.text
    assert "25.00 CNY per month" in page.text
    assert "Next renewal" in page.text
    assert "March 10, 2027, 9 a.m. (Asia/Shanghai)" in page.text  # date and time, in its zone
    assert "You agreed to auto-renewal" in page.text
    assert "Feb. 10, 2027, 9 a.m. (Asia/Shanghai)" in page.text
    assert f"<td>{shown(notice.send_at)}</td>" in page.text
    assert "<td>Planned</td>" in page.text
    assert "<td>SMS, Push</td>" in page.text
    assert f'action="{off_url(subscription)}"' in page.text


def test_reminders_sent_show_when_they_went_out(owner: Client, subscription: Subscription) -> None:
    sent_at = dt.datetime(2027, 3, 5, 3, 15, tzinfo=dt.UTC)
    subscription.notices.update(status=NoticeStatus.SENT, sent_at=sent_at)
    page = owner.get(MANAGE)
    assert "<td>Accepted by a provider</td>" in page.text
    assert "<td>March 5, 2027, 11:15 a.m.</td>" in page.text


def test_the_page_lists_only_the_users_own_subscriptions(
    owner: Client, subscription: Subscription
) -> None:
    other = consenting(terms=make_terms(service_name="Somebody Else's Plan"))
    page = owner.get(MANAGE)
    assert list(page.context["subscriptions"]) == [subscription]
    assert "Somebody Else" not in page.text
    assert off_url(other) not in page.text


def test_a_user_without_subscriptions(client: Client) -> None:
    client.force_login(make_user())
    assert "You have no subscriptions." in client.get(MANAGE).text


def test_the_page_does_not_query_once_per_subscription(
    owner: Client, subscription: Subscription, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    for name in ("Max", "Pro", "Ultra"):
        consenting(user=subscription.user, terms=make_terms(service_name=f"Example {name}"))
    with django_assert_max_num_queries(6):
        page = owner.get(MANAGE)
    assert len(page.context["subscriptions"]) == 4


def test_an_ended_subscription_offers_no_switch(owner: Client, subscription: Subscription) -> None:
    subscription.transition_to(Status.CANCELED, auto_renew=False)
    page = owner.get(MANAGE)
    assert "<dd>Ended</dd>" in page.text
    assert off_url(subscription) not in page.text
    assert on_url(subscription) not in page.text


# --- the contract number and the statutory flows ---------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
#: An eu contract concluded on 20 February at 13:00 in Berlin: it can be withdrawn from until
#: the end of 6 March, Berlin time.
CONCLUDED = dt.datetime(2027, 2, 20, 12, tzinfo=dt.UTC)
LAST_INSTANT = dt.datetime(2027, 3, 6, 23, 59, 59, tzinfo=BERLIN)
PERIOD_OVER = dt.datetime(2027, 3, 7, tzinfo=BERLIN)


def contract(user: User, policy: str, **fields: Any) -> Subscription:
    terms = make_terms(service_name="Streamo", currency="EUR", locale="en")
    return make_subscription(user, terms, policy=policy, time_zone="Europe/Berlin", **fields)


def links(page: ClientResponse, url: str, label: str) -> bool:
    """Whether ``page`` links to exactly ``url``, labelled ``label``."""
    return bool(re.search(rf'<a [^>]*href="{re.escape(url)}"[^>]*>{label}</a>', page.text))


def test_each_subscription_shows_its_contract_number(
    owner: Client, subscription: Subscription
) -> None:
    page = owner.get(MANAGE)
    assert re.search(rf"<dt>Contract number</dt>\s*<dd>{subscription.pk}</dd>", page.text)


def test_a_de_contract_links_to_the_cancellation_button_with_it_preselected(
    owner: Client, subscription: Subscription
) -> None:
    de = contract(subscription.user, "de")
    page = owner.get(MANAGE)

    link = f"{reverse('renewals:cancel_contract_confirm', args=['de'])}?contract={de.pk}"
    assert links(page, link, "Verträge hier kündigen")
    assert page.text.count("renewals-statutory-button") == 1  # none for the cn subscription
    confirm = owner.get(link)
    assert confirm.status_code == 200
    assert confirm.context["form"]["contract"].value() == de.pk


def test_the_cancellation_button_stays_once_auto_renewal_is_off(
    owner: Client, subscription: Subscription
) -> None:
    contract(subscription.user, "de", auto_renew=False)
    page = owner.get(MANAGE)

    start = reverse("renewals:cancel_contract_confirm", args=["de"])
    assert links(page, start, "Verträge hier kündigen")
    assert owner.get(start).status_code == 200


@pytest.mark.parametrize(("at", "offered"), [(LAST_INSTANT, True), (PERIOD_OVER, False)])
def test_an_eu_contract_links_to_the_withdrawal_function_inside_its_period(
    owner: Client, subscription: Subscription, at: dt.datetime, offered: bool
) -> None:
    with freeze_time(CONCLUDED):
        eu = contract(subscription.user, "eu")
    with freeze_time(at):
        page = owner.get(MANAGE)

    link = f"{reverse('renewals:withdraw_confirm', args=['eu'])}?contract={eu.pk}"
    assert links(page, link, "withdraw from contract here") is offered
    assert ("renewals-statutory-button" in page.text) is offered


# --- off: one POST -------------------------------------------------------------------------


def test_one_post_switches_auto_renewal_off(owner: Client, subscription: Subscription) -> None:
    response = owner.post(off_url(subscription), follow=True)

    assert response.redirect_chain == [(MANAGE, 302)]
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    consent = Consent.objects.get(subscription=subscription)
    assert consent.revoked_via == RevokedVia.MANAGE_PAGE
    assert consent.revoked_by == subscription.user
    assert said(response) == [
        "Auto-renewal of Example Plus is off. Nothing more is charged; the service runs until "
        "March 10, 2027, 9 a.m. (Asia/Shanghai time)."
    ]
    assert "The service runs until" in response.text
    assert f'href="{on_url(subscription)}"' in response.text
    event = AuditEvent.objects.get(kind="auto_renewal_cancelled")
    assert event.actor == f"user:{subscription.user.pk}"


def test_switching_off_twice_changes_nothing_more(
    owner: Client, switched_off: Subscription
) -> None:
    events = AuditEvent.objects.count()
    response = owner.post(off_url(switched_off), follow=True)
    assert said(response) == ["Auto-renewal of Example Plus was already off."]
    assert AuditEvent.objects.count() == events


def test_switching_off_without_a_next_renewal_says_only_that(client: Client) -> None:
    subscription = make_subscription(next_renewal_at=None)
    client.force_login(subscription.user)
    response = client.post(off_url(subscription), follow=True)
    assert said(response) == ["Auto-renewal of Example Plus is off."]


def test_get_on_the_off_route_is_405(owner: Client, subscription: Subscription) -> None:
    assert owner.get(off_url(subscription)).status_code == 405
    subscription.refresh_from_db()
    assert subscription.auto_renew


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_other_methods_are_405(owner: Client, subscription: Subscription, method: str) -> None:
    assert getattr(owner, method)(on_url(subscription)).status_code == 405
    assert getattr(owner, method)(MANAGE).status_code == 405


def test_a_post_without_the_csrf_token_is_403(subscription: Subscription) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(subscription.user)
    assert client.post(off_url(subscription)).status_code == 403
    subscription.refresh_from_db()
    assert subscription.auto_renew


# --- another user's subscription -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [("post", off_url), ("get", on_url), ("post", on_url)],
    ids=["off", "on-page", "on"],
)
def test_another_users_subscription_is_404_on_every_route(
    client: Client, method: str, url: Callable[[Subscription], str]
) -> None:
    theirs = consenting(auto_renew=False)
    client.force_login(make_user())
    page = getattr(client, method)(url(theirs), {"auto_renew_consent": "yes"})
    assert page.status_code == 404
    assert "Example Plus" not in page.text
    theirs.refresh_from_db()
    assert not theirs.auto_renew
    assert not AuditEvent.objects.filter(kind__startswith="auto_renewal").exists()


# --- on again, with fresh consent --------------------------------------------------------------


def test_the_on_page_shows_the_current_terms_and_an_unticked_box(
    owner: Client, switched_off: Subscription
) -> None:
    page = owner.get(on_url(switched_off))

    assert page.status_code == 200
    form = page.context["form"]
    assert isinstance(form, ConsentForm)
    assert form.terms == switched_off.terms
    assert form.disclosure.first_renewal_at == RENEWAL
    assert form.disclosure.time_zone == "Asia/Shanghai"
    (box,) = re.findall(r'<input type="checkbox"[^>]*>', page.text)
    assert 'value="yes"' in box
    assert "checked" not in box
    assert '<label for="id_auto_renew_consent">' in page.text
    assert "Price: 25.00 CNY per month" in page.text
    assert "First renewal: March 10, 2027 (Asia/Shanghai time)." in page.text
    assert page.text.count('name="csrfmiddlewaretoken"') == 1


def test_switching_on_records_fresh_consent(owner: Client, switched_off: Subscription) -> None:
    page = owner.get(on_url(switched_off))
    response = owner.post(on_url(switched_off), ticked(page), follow=True)

    assert response.redirect_chain == [(MANAGE, 302)]
    assert said(response) == ["Auto-renewal of Example Plus is on."]
    switched_off.refresh_from_db()
    assert switched_off.auto_renew
    fresh = switched_off.consents.get(revoked_at__isnull=True)
    assert fresh.granted_at == NOW
    assert fresh.form_id == "renewals:auto_renew_on"
    assert fresh.control_initially_unticked
    assert fresh.terms_hash == switched_off.terms.content_hash
    assert "First renewal: March 10, 2027 (Asia/Shanghai time)." in fresh.disclosure_text
    assert "trial" not in fresh.disclosure_text
    event = AuditEvent.objects.get(kind="auto_renewal_resumed")
    assert event.actor == f"user:{switched_off.user.pk}"


def price_change(subscription: Subscription) -> RenewalTerms:
    """Set a dearer price for the subscription's next renewal; return its terms."""
    dearer = make_terms(
        amount="30.00",
        renewal_wording="Renews automatically every month at 30.00 CNY until you cancel.",
    )
    Subscription.objects.filter(pk=subscription.pk).update(upcoming_terms=dearer)
    return dearer


def test_with_a_new_price_pending_switching_on_is_consent_to_it(
    owner: Client, switched_off: Subscription
) -> None:
    dearer = price_change(switched_off)
    page = owner.get(on_url(switched_off))

    assert page.context["form"].terms == dearer
    assert "Price: 30.00 CNY per month" in page.text
    assert "25.00" not in page.text
    response = owner.post(on_url(switched_off), ticked(page), follow=True)
    assert said(response) == ["Auto-renewal of Example Plus is on."]
    fresh = switched_off.consents.get(revoked_at__isnull=True)
    assert fresh.terms == dearer
    assert fresh.terms_hash == dearer.content_hash
    assert "Price: 30.00 CNY per month" in fresh.disclosure_text


def test_a_new_price_set_while_the_on_page_is_open_is_asked_about_again(
    owner: Client, switched_off: Subscription
) -> None:
    page = owner.get(on_url(switched_off))
    price_change(switched_off)
    response = owner.post(on_url(switched_off), ticked(page))

    assert response.status_code == 200
    assert "The terms changed after this page was shown." in response.text
    assert "Price: 30.00 CNY per month" in response.text
    switched_off.refresh_from_db()
    assert not switched_off.auto_renew


@pytest.mark.parametrize("value", ["", "on", "0", "off", "no", "false", "true", "1"])
def test_switching_on_without_the_box_ticked_is_refused(
    owner: Client, switched_off: Subscription, value: str
) -> None:
    page = owner.get(on_url(switched_off))
    response = owner.post(on_url(switched_off), ticked(page, auto_renew_consent=value))

    assert response.status_code == 200
    assert "Tick the box to agree to automatic renewal." in response.text
    switched_off.refresh_from_db()
    assert not switched_off.auto_renew
    assert not switched_off.consents.filter(revoked_at__isnull=True).exists()


def test_switching_on_with_a_tampered_disclosure_is_refused(
    owner: Client, switched_off: Subscription
) -> None:
    page = owner.get(on_url(switched_off))
    data = ticked(page, disclosure_token=ticked(page)["disclosure_token"][:-2] + "xx")
    response = owner.post(on_url(switched_off), data)

    assert response.status_code == 200
    assert "This form could not be verified." in response.text
    switched_off.refresh_from_db()
    assert not switched_off.auto_renew


def test_switching_on_a_second_time_needs_no_new_consent(
    owner: Client, switched_off: Subscription
) -> None:
    page = owner.get(on_url(switched_off))
    owner.post(on_url(switched_off), ticked(page), follow=True)
    response = owner.post(on_url(switched_off), ticked(page), follow=True)
    assert said(response) == ["Auto-renewal of Example Plus is already on."]
    assert switched_off.consents.filter(revoked_at__isnull=True).count() == 1


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_ended_subscription_cannot_be_switched_on(
    owner: Client, switched_off: Subscription, method: str
) -> None:
    switched_off.transition_to(Status.EXPIRED)
    response = getattr(owner, method)(
        on_url(switched_off), {"auto_renew_consent": "yes"}, follow=True
    )
    assert response.redirect_chain == [(MANAGE, 302)]
    assert said(response) == [
        "Example Plus has ended, so it cannot renew again. Subscribe again instead."
    ]
    switched_off.refresh_from_db()
    assert not switched_off.auto_renew


def test_a_subscription_that_ends_while_the_page_is_open_cannot_be_switched_on(
    owner: Client, switched_off: Subscription
) -> None:
    page = owner.get(on_url(switched_off))
    ended = IllegalTransition(Status.EXPIRED, "auto-renewal on")
    with mock.patch("renewals.views.manage.resume_auto_renewal", side_effect=ended):
        response = owner.post(on_url(switched_off), ticked(page), follow=True)
    assert said(response) == [
        "Example Plus has ended, so it cannot renew again. Subscribe again instead."
    ]


def test_switching_on_without_the_csrf_token_is_403(switched_off: Subscription) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(switched_off.user)
    page = client.get(on_url(switched_off))
    assert client.post(on_url(switched_off), ticked(page)).status_code == 403
    switched_off.refresh_from_db()
    assert not switched_off.auto_renew


# --- agreeing to a new price while auto-renewal stays on ----------------------------------------


def new_price_url(subscription: Subscription) -> str:
    return reverse("renewals:accept_new_terms", args=[subscription.pk])


def test_a_higher_price_awaiting_consent_is_offered_on_the_manage_page(
    owner: Client, subscription: Subscription
) -> None:
    assert new_price_url(subscription) not in owner.get(MANAGE).text
    price_change(subscription)
    page = owner.get(MANAGE)
    assert f'href="{new_price_url(subscription)}"' in page.text
    assert "Agree to the new price" in page.text


def test_agreeing_to_the_new_price_records_consent_to_the_new_terms(
    owner: Client, subscription: Subscription
) -> None:
    dearer = price_change(subscription)
    page = owner.get(new_price_url(subscription))

    assert page.context["form"].terms == dearer
    assert "The price changes from 25.00 CNY per month to 30.00 CNY per month." in page.text
    assert "First renewal: March 10, 2027 (Asia/Shanghai time)." in page.text
    response = owner.post(new_price_url(subscription), ticked(page), follow=True)

    assert response.redirect_chain == [(MANAGE, 302)]
    assert said(response) == ["You agreed to the new price of Example Plus: 30.00 CNY per month."]
    fresh = subscription.consents.get(terms_hash=dearer.content_hash)
    assert (fresh.form_id, fresh.granted_at, fresh.revoked_at) == (
        "renewals:accept_new_terms",
        NOW,
        None,
    )
    assert new_price_url(subscription) not in response.text
    again = owner.get(new_price_url(subscription), follow=True)
    assert said(again) == ["Example Plus has no new price to agree to."]


def test_agreeing_to_the_new_price_without_the_box_ticked_is_refused(
    owner: Client, subscription: Subscription
) -> None:
    dearer = price_change(subscription)
    page = owner.get(new_price_url(subscription))
    response = owner.post(new_price_url(subscription), ticked(page, auto_renew_consent=""))
    assert response.status_code == 200
    assert not subscription.consents.filter(terms_hash=dearer.content_hash).exists()


def test_with_auto_renewal_off_the_new_price_is_agreed_to_by_switching_it_on(
    owner: Client, switched_off: Subscription
) -> None:
    price_change(switched_off)
    response = owner.get(new_price_url(switched_off))
    assert response.status_code == 302
    assert response["Location"] == on_url(switched_off)
