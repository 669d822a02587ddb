"""The statutory flows of the rule packs: Germany's cancellation button (BGB § 312k) and the
EU's withdrawal function (Directive 2011/83/EU, Art. 11a)."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import reverse
from freezegun import freeze_time
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings

from notifications.backends import locmem
from notifications.messages import SMSMessage
from renewals.exceptions import NotAllowed, NoWithdrawalRight, WithdrawalPeriodOver
from renewals.models import (
    AuditEvent,
    ContractDeclaration,
    DeclarationStatus,
    Status,
    Subscription,
)
from renewals.services import (
    apply_scheduled_cancellations,
    can_withdraw,
    send_pending_confirmations,
    withdraw_from_contract,
    withdrawal_deadline,
)
from renewals.signals import contract_declared, contract_withdrawn
from renewals.types import User

from ..types import ClientResponse
from .factories import make_subscription, make_terms, make_user

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
PHONE = "+4915123456789"
#: 10:30 in Berlin (summer time).
NOW = dt.datetime(2026, 7, 1, 8, 30, tzinfo=dt.UTC)
NOW_SHOWN = "July 1, 2026, 10:30 a.m."


@pytest.fixture(autouse=True)
def _settings(settings: Settings, reachable_users: None) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "DEFAULT_TIME_ZONE": "Europe/Berlin"}


@pytest.fixture
def holder() -> User:
    """A consumer with a phone number on file (the test resolver reads ``first_name``)."""
    return make_user(first_name=PHONE, last_name="en")


def contract(user: User, policy: str = "de", **fields: Any) -> Subscription:
    terms = make_terms(service_name="Streamo", currency="EUR", locale="en")
    return make_subscription(user, terms, policy=policy, time_zone="Europe/Berlin", **fields)


def url(name: str, *args: object) -> str:
    return reverse(f"renewals:{name}", args=args)


def sms_bodies() -> list[str]:
    return [m.body for m in locmem.outbox if isinstance(m, SMSMessage)]


def page(response: ClientResponse) -> str:
    return html.unescape(response.content.decode())


def cancellation(**fields: Any) -> dict[str, Any]:
    """A complete POST of the cancellation form for a consumer who is not signed in."""
    return {
        "contract_number": "",
        "name": "Erika Mustermann",
        "email": "",
        "phone": "",
        "kind": "ordinary",
        "reason": "",
        "ends": "earliest",
        "ends_on": "",
        **fields,
    }


def declare_via(
    client: Client,
    data: Mapping[str, object],
    *,
    flow: str = "cancel_contract",
    policy: str = "de",
    capture: DjangoCaptureOnCommitCallbacks | None = None,
) -> ClientResponse:
    """POST the confirmation form and follow to the receipt."""
    if capture is None:
        return client.post(url(f"{flow}_confirm", policy), data)
    with capture(execute=True):
        return client.post(url(f"{flow}_confirm", policy), data)


# Germany: the cancellation button ------------------------------------------------------------


def test_the_start_page_shows_the_button_labelled_as_the_law_says(client: Client) -> None:
    response = client.get(url("cancel_contract", "de"))

    assert response.status_code == 200
    confirm_url = url("cancel_contract_confirm", "de")
    assert f'href="{confirm_url}">Verträge hier kündigen</a>' in page(response)


def test_the_button_for_every_page_of_the_site_leads_to_the_confirmation_page() -> None:
    rendered = Template('{% load renewals_statutory %}{% statutory_button "de" %}').render(
        Context()
    )

    assert f'href="{url("cancel_contract_confirm", "de")}">Verträge hier kündigen</a>' in rendered


def test_a_pack_whose_cancellation_is_one_click_has_no_statutory_button() -> None:
    with pytest.raises(ValueError, match="'cn' has no statutory flow"):
        Template('{% load renewals_statutory %}{% statutory_button "cn" %}').render(Context())


@pytest.mark.parametrize(
    ("flow", "policy"),
    [
        ("cancel_contract", "cn"),
        ("cancel_contract", "eu"),
        ("cancel_contract", "nowhere"),
        ("withdraw", "de"),
        ("withdraw", "cn"),
    ],
)
@pytest.mark.parametrize("page_name", ["", "_confirm"])
def test_a_flow_is_offered_only_under_packs_that_have_it(
    client: Client, flow: str, policy: str, page_name: str
) -> None:
    assert client.get(url(f"{flow}{page_name}", policy)).status_code == 404


def test_the_confirmation_page_asks_for_what_the_law_names_without_a_login(client: Client) -> None:
    response = client.get(url("cancel_contract_confirm", "de"))

    assert response.status_code == 200
    form = response.context["form"]
    assert list(form.fields) == [
        "contract_number",
        "name",
        "email",
        "phone",
        "kind",
        "reason",
        "ends",
        "ends_on",
    ]
    body = page(response)
    assert 'value="ordinary"' in body
    assert 'value="extraordinary"' in body
    assert "At the earliest possible date" in body
    assert 'type="password"' not in body
    assert '<button type="submit">jetzt kündigen</button>' in body


def test_a_signed_in_consumer_chooses_among_their_own_contracts_with_details_filled_in(
    client: Client, holder: User
) -> None:
    mine = contract(holder)
    contract(holder, auto_renew=False)  # already ends: nothing to cancel
    contract(holder, policy="cn")  # another pack's flow
    contract(make_user())  # another consumer's
    client.force_login(holder)

    form = client.get(url("cancel_contract_confirm", "de")).context["form"]

    assert "contract_number" not in form.fields
    assert list(form.fields["contract"].queryset) == [mine]
    assert form.initial["email"] == holder.email
    assert form.initial["phone"] == PHONE


@freeze_time(NOW)
def test_jetzt_kuendigen_switches_auto_renewal_off_and_confirms_with_date_and_time(
    client: Client, holder: User, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    mine = contract(holder)
    client.force_login(holder)
    received = []

    def receiver(declaration: ContractDeclaration, **kwargs: object) -> None:
        received.append(declaration)

    contract_declared.connect(receiver)
    try:
        response = declare_via(
            client,
            cancellation(contract=mine.pk, email=holder.email),
            capture=django_capture_on_commit_callbacks,
        )
    finally:
        contract_declared.disconnect(receiver)

    declaration = ContractDeclaration.objects.get()
    assert response.status_code == 302
    mine.refresh_from_db()
    assert not mine.auto_renew
    assert declaration.status == DeclarationStatus.APPLIED
    assert declaration.subscription == mine
    assert declaration.received_at == NOW
    assert received == [declaration]
    events = AuditEvent.objects.filter(subscription=mine).exclude(kind="gateway_synced")
    assert list(events.values_list("kind", flat=True)) == [
        "cancellation_declared",
        "auto_renewal_cancelled",
        "declaration_applied",
    ]
    assert mine.consents.count() == 0  # (none given in this test: nothing to revoke)

    receipt = page(client.get(response["Location"]))
    assert f"Received on {NOW_SHOWN} (Europe/Berlin)." in receipt
    assert "You made this declaration by pressing the button “jetzt kündigen”." in receipt
    assert f"Contract number</dt>\n  <dd>{mine.pk}</dd>" in receipt
    assert mine.next_renewal_at is not None
    ends = mine.local(mine.next_renewal_at).strftime("%B %-d, %Y")
    assert f"Auto-renewal is off. Your contract runs until {ends}, 10:30 a.m. and then" in receipt
    assert "download the declaration as a text file" in receipt

    assert sms_bodies() == [
        f"Streamo: on {NOW_SHOWN} we received your cancellation of contract {mine.pk}.",
        f"Streamo: auto-renewal is off. From {ends}, 10:30 a.m. you will not be charged again.",
    ]


@freeze_time(NOW)
def test_the_confirmation_message_is_in_the_holders_language(
    client: Client, django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks
) -> None:
    holder = make_user(first_name=PHONE, last_name="zh-hans")
    mine = contract(holder)
    client.force_login(holder)

    declare_via(
        client,
        cancellation(contract=mine.pk, phone=PHONE),
        capture=django_capture_on_commit_callbacks,
    )

    assert (
        sms_bodies()[0] == f"【Streamo】我们已于2026年7月1日 10:30收到您解除合同{mine.pk}的声明。"
    )


@freeze_time(NOW)
def test_the_declaration_downloads_as_a_text_file_to_keep(client: Client, holder: User) -> None:
    mine = contract(holder)
    client.force_login(holder)
    receipt_url = declare_via(
        client, cancellation(contract=mine.pk, name="Erika & Max <Mustermann>", phone=PHONE)
    )["Location"]
    download_url = client.get(receipt_url).context["download_url"]

    response = client.get(download_url)

    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="cancel-contract-20260701-103000.txt"'
    )
    text = response.content.decode()
    assert text.startswith("We have received your cancellation\n")
    assert f"Received on {NOW_SHOWN} (Europe/Berlin)." in text
    assert "You made this declaration by pressing the button “jetzt kündigen”." in text
    assert "Declaration: Ordinary cancellation" in text
    assert f"Contract number: {mine.pk}" in text
    assert "The contract should end: at the earliest possible date" in text
    assert f"Mobile phone number: {PHONE}" in text
    assert "Full name: Erika & Max <Mustermann>\n" in text  # plain text, not escaped HTML


@freeze_time(NOW)
@pytest.mark.parametrize(
    "identifies", [{"email": "HOLDER@Example.com"}, {"phone": "+49 1512 3456789"}]
)
def test_without_a_login_the_contract_number_and_a_contact_on_file_find_the_contract(
    client: Client,
    identifies: dict[str, str],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    holder = make_user("holder", email="holder@example.com", first_name=PHONE, last_name="en")
    theirs = contract(holder)

    response = declare_via(
        client,
        cancellation(contract_number=str(theirs.pk), **identifies),
        capture=django_capture_on_commit_callbacks,
    )

    theirs.refresh_from_db()
    assert not theirs.auto_renew
    assert ContractDeclaration.objects.get().status == DeclarationStatus.APPLIED
    # The holder learns of it on the phone number on file; the page tells nothing of it.
    assert f"cancellation of contract {theirs.pk}" in sms_bodies()[0]
    receipt = page(client.get(response["Location"]))
    assert "We match your declaration to your contract" in receipt
    assert "Auto-renewal is off" not in receipt


@freeze_time(NOW)
@pytest.mark.parametrize(
    "details",
    [
        {"email": "someone@example.com"},  # not the holder's
        {"phone": "+49 1512 9999999"},  # not the holder's
        {"contract_number": "999999", "email": "holder@example.com"},  # no such contract
    ],
)
def test_a_declaration_that_matches_no_contract_is_recorded_and_the_page_reveals_nothing(
    client: Client,
    details: dict[str, str],
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    holder = make_user("holder", email="holder@example.com", first_name=PHONE)
    theirs = contract(holder)

    response = declare_via(
        client,
        cancellation(**{"contract_number": str(theirs.pk), **details}),
        capture=django_capture_on_commit_callbacks,
    )

    theirs.refresh_from_db()
    assert theirs.auto_renew
    declaration = ContractDeclaration.objects.get()
    assert (declaration.status, declaration.subscription) == (DeclarationStatus.UNMATCHED, None)
    event = AuditEvent.objects.get(kind="cancellation_declared")
    assert (event.chain, event.data["content_sha256"]) == ("system", declaration.content_hash())
    assert locmem.outbox == []
    assert send_pending_confirmations() == 0  # nobody to confirm it to
    receipt = page(client.get(response["Location"]))
    assert "We match your declaration to your contract" in receipt
    assert f"Received on {NOW_SHOWN} (Europe/Berlin)." in receipt


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"name": "", "email": "e@example.com"}, "name", "This field is required."),
        ({}, "email", "Give your email address or your phone number, so that we can find you."),
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
        (
            {"phone": "12"},
            "phone",
            "Enter a valid mobile phone number, starting with its country code.",
        ),
        (
            {"contract_number": "A-17", "email": "e@example.com"},
            "contract_number",
            "Enter the contract number in digits, as our messages show it.",
        ),
        (
            {"contract_number": "", "email": "e@example.com"},
            "contract_number",
            "This field is required.",
        ),
        (
            {"kind": "extraordinary", "email": "e@example.com"},
            "reason",
            "Give the reason for an extraordinary cancellation.",
        ),
        (
            {"ends": "date", "email": "e@example.com"},
            "ends_on",
            "Enter the date, or choose the earliest possible date.",
        ),
        (
            {"ends": "date", "ends_on": "2026-06-30", "email": "e@example.com"},
            "ends_on",
            "The date must not be in the past.",
        ),
    ],
)
@freeze_time(NOW)
def test_bad_input_gets_a_clear_error_and_changes_nothing(
    client: Client, holder: User, data: dict[str, str], field: str, error: str
) -> None:
    theirs = contract(holder)

    response = client.post(
        url("cancel_contract_confirm", "de"),
        cancellation(**{"contract_number": str(theirs.pk), **data}),
    )

    assert response.status_code == 200
    assert response.context["form"].errors[field] == [error]
    assert error in page(response)
    assert not ContractDeclaration.objects.exists()
    theirs.refresh_from_db()
    assert theirs.auto_renew


def test_a_signed_in_consumer_cannot_choose_another_consumers_contract(
    client: Client, holder: User
) -> None:
    contract(holder)
    other = contract(make_user())
    client.force_login(holder)

    response = client.post(
        url("cancel_contract_confirm", "de"), cancellation(contract=other.pk, phone=PHONE)
    )

    assert response.status_code == 200
    assert "contract" in response.context["form"].errors
    assert not ContractDeclaration.objects.exists()
    other.refresh_from_db()
    assert other.auto_renew


def test_get_never_changes_anything(client: Client, holder: User) -> None:
    theirs = contract(holder)
    query = cancellation(contract_number=str(theirs.pk), email=holder.email)

    for method in (client.get, client.head):
        assert method(url("cancel_contract_confirm", "de"), query).status_code == 200

    assert not ContractDeclaration.objects.exists()
    theirs.refresh_from_db()
    assert theirs.auto_renew


def test_a_post_without_the_csrf_token_is_refused(holder: User) -> None:
    theirs = contract(holder)

    response = Client(enforce_csrf_checks=True).post(
        url("cancel_contract_confirm", "de"),
        cancellation(contract_number=str(theirs.pk), email=holder.email),
    )

    assert response.status_code == 403
    assert not ContractDeclaration.objects.exists()
    theirs.refresh_from_db()
    assert theirs.auto_renew


@freeze_time(NOW)
@pytest.mark.parametrize(("flow", "policy"), [("cancel_contract", "de"), ("withdraw", "eu")])
def test_posts_from_one_address_are_rate_limited(
    client: Client, settings: Settings, flow: str, policy: str
) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "LINK_RATE_LIMIT": {"IP": (2, 60)}}
    confirm = url(f"{flow}_confirm", policy)
    data = cancellation(contract_number="999999", email="someone@example.com")
    assert [client.post(confirm, data).status_code for _ in range(2)] == [302, 302]

    with freeze_time(NOW + dt.timedelta(seconds=15)):
        refused = client.post(confirm, data)
        shown = client.get(confirm)
        elsewhere = client.post(confirm, data, REMOTE_ADDR="198.51.100.9")

    assert refused.status_code == 429
    assert refused["Retry-After"] == "45"  # the window began at NOW
    assert "Please try again in 45 seconds." in refused.text
    assert shown.status_code == 200  # reading the form is not counted
    assert elsewhere.status_code == 302
    assert ContractDeclaration.objects.count() == 3
    with freeze_time(NOW + dt.timedelta(seconds=60)):
        assert client.post(confirm, data).status_code == 302


def test_the_rate_limit_of_the_forms_can_be_switched_off(
    client: Client, settings: Settings
) -> None:
    settings.RENEWALS = {**settings.RENEWALS, "LINK_RATE_LIMIT": {"IP": None}}
    confirm = url("cancel_contract_confirm", "de")
    data = cancellation(contract_number="999999", email="someone@example.com")
    assert {client.post(confirm, data).status_code for _ in range(70)} == {302}


@freeze_time(NOW)
def test_an_extraordinary_cancellation_records_its_reason(client: Client, holder: User) -> None:
    mine = contract(holder)
    client.force_login(holder)

    response = declare_via(
        client,
        cancellation(
            contract=mine.pk, phone=PHONE, kind="extraordinary", reason="Service unavailable."
        ),
    )

    mine.refresh_from_db()
    assert not mine.auto_renew
    event = AuditEvent.objects.get(kind="auto_renewal_cancelled")
    assert (event.data["via"], event.data["reason"]) == (
        "cancellation_button",
        "Service unavailable.",
    )
    receipt = page(client.get(response["Location"]))
    assert "Service unavailable." in receipt
    assert "We check the reason you gave" in receipt


def test_a_later_date_waits_for_the_term_that_includes_it(client: Client, holder: User) -> None:
    with freeze_time(NOW):
        mine = contract(holder, next_renewal_at=NOW + dt.timedelta(days=30))  # July 31
        client.force_login(holder)
        response = declare_via(
            client,
            cancellation(contract=mine.pk, phone=PHONE, ends="date", ends_on="2026-08-15"),
        )
        declaration = ContractDeclaration.objects.get()
        assert declaration.status == DeclarationStatus.SCHEDULED
        assert Subscription.objects.get(pk=mine.pk).auto_renew
        receipt = page(client.get(response["Location"]))
        assert "Auto-renewal stays on until the term that includes Aug. 15, 2026" in receipt
        assert apply_scheduled_cancellations() == 0  # the current term ends before it

    # The renewal of July 31 starts the term that includes August 15.
    Subscription.objects.filter(pk=mine.pk).update(next_renewal_at=NOW + dt.timedelta(days=61))
    assert apply_scheduled_cancellations() == 1
    assert apply_scheduled_cancellations() == 0
    mine.refresh_from_db()
    assert not mine.auto_renew
    declaration.refresh_from_db()
    assert declaration.status == DeclarationStatus.APPLIED


@freeze_time(NOW)
def test_a_date_inside_the_current_term_takes_effect_at_once(client: Client, holder: User) -> None:
    mine = contract(holder, next_renewal_at=NOW + dt.timedelta(days=30))  # July 31
    client.force_login(holder)

    declare_via(
        client, cancellation(contract=mine.pk, phone=PHONE, ends="date", ends_on="2026-07-31")
    )

    mine.refresh_from_db()
    assert not mine.auto_renew
    assert ContractDeclaration.objects.get().status == DeclarationStatus.APPLIED


def test_a_receipt_address_that_was_changed_or_is_old_shows_nothing(
    client: Client, holder: User
) -> None:
    mine = contract(holder)
    client.force_login(holder)
    with freeze_time(NOW):
        receipt_url = declare_via(client, cancellation(contract=mine.pk, phone=PHONE))["Location"]
    token = receipt_url.rstrip("/").rsplit("/", 1)[1]

    with freeze_time(NOW + dt.timedelta(days=29)):
        assert client.get(receipt_url).status_code == 200
        assert client.get(url("cancel_contract_done", token[:-1] + "x")).status_code == 404
        assert client.get(url("withdraw_done", token)).status_code == 404  # another flow's
    with freeze_time(NOW + dt.timedelta(days=31)):
        assert client.get(receipt_url).status_code == 404
        assert client.get(url("cancel_contract_declaration", token)).status_code == 404


# EU: the withdrawal function ---------------------------------------------------------------

#: A contract concluded on 10 July 2026 at 14:00 in Berlin: the withdrawal period runs to the
#: end of 24 July, Berlin time.
CONCLUDED = dt.datetime(2026, 7, 10, 12, tzinfo=dt.UTC)
LAST_INSTANT = dt.datetime(2026, 7, 24, 23, 59, 59, 999999, tzinfo=BERLIN)
PERIOD_OVER = dt.datetime(2026, 7, 25, tzinfo=BERLIN)


def eu_contract(user: User) -> Subscription:
    with freeze_time(CONCLUDED):
        return contract(user, policy="eu")


def test_the_withdrawal_function_is_labelled_as_the_directive_says(client: Client) -> None:
    start = page(client.get(url("withdraw", "eu")))
    confirm = page(client.get(url("withdraw_confirm", "eu")))

    assert f'href="{url("withdraw_confirm", "eu")}">withdraw from contract here</a>' in start
    assert '<button type="submit">confirm withdrawal</button>' in confirm


def test_the_withdrawal_period_is_fourteen_whole_days_after_the_contract_day(holder: User) -> None:
    theirs = eu_contract(holder)

    assert withdrawal_deadline(theirs) == PERIOD_OVER
    assert can_withdraw(theirs, CONCLUDED + dt.timedelta(days=14))  # exactly 14 days later
    assert can_withdraw(theirs, LAST_INSTANT)
    assert not can_withdraw(theirs, PERIOD_OVER)
    assert withdrawal_deadline(contract(holder)) is None  # the de pack gives no such right


@pytest.mark.parametrize("at", [CONCLUDED + dt.timedelta(days=14), LAST_INSTANT])
def test_a_withdrawal_inside_the_period_ends_the_contract_and_is_acknowledged(
    client: Client,
    holder: User,
    at: dt.datetime,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    theirs = eu_contract(holder)
    client.force_login(holder)
    withdrawn = []

    def receiver(**kwargs: Any) -> None:
        withdrawn.append(kwargs)

    contract_withdrawn.connect(receiver)
    try:
        with freeze_time(at):
            response = declare_via(
                client,
                {"contract": theirs.pk, "name": "Erika Mustermann", "phone": PHONE},
                flow="withdraw",
                policy="eu",
                capture=django_capture_on_commit_callbacks,
            )
            receipt = page(client.get(response["Location"]))
    finally:
        contract_withdrawn.disconnect(receiver)

    theirs.refresh_from_db()
    assert (theirs.status, theirs.auto_renew, theirs.next_renewal_at) == (
        Status.CANCELED,
        False,
        None,
    )
    assert ContractDeclaration.objects.get().status == DeclarationStatus.APPLIED
    assert [(w["subscription"].pk, w["withdrawn_at"]) for w in withdrawn] == [(theirs.pk, at)]
    shown = f"July {at.astimezone(BERLIN).day}, 2026"
    assert f"Received on {shown}" in receipt
    assert "The contract has ended." in receipt
    acknowledgment, switched_off = sms_bodies()
    assert acknowledgment.startswith(f"Streamo: on {shown}")
    assert f"we received your withdrawal from contract {theirs.pk}. " in acknowledgment
    assert acknowledgment.endswith("The contract has ended.")
    assert "auto-renewal is off" in switched_off


def test_after_the_period_the_withdrawal_is_refused_and_nothing_changes(holder: User) -> None:
    theirs = eu_contract(holder)

    with pytest.raises(WithdrawalPeriodOver) as refused:
        withdraw_from_contract(theirs, actor=holder, at=PERIOD_OVER)

    assert refused.value.deadline == PERIOD_OVER
    theirs.refresh_from_db()
    assert (theirs.status, theirs.auto_renew) == (Status.ACTIVE, True)
    assert not AuditEvent.objects.filter(subscription=theirs).exists()


def test_a_pack_without_a_withdrawal_right_refuses_it(holder: User) -> None:
    with pytest.raises(NoWithdrawalRight):
        withdraw_from_contract(contract(holder), actor=holder)


def test_only_the_holder_may_withdraw(holder: User) -> None:
    with pytest.raises(NotAllowed):
        withdraw_from_contract(eu_contract(holder), actor=make_user(), at=LAST_INSTANT)


def test_after_the_period_the_function_no_longer_offers_the_contract(
    client: Client, holder: User
) -> None:
    theirs = eu_contract(holder)
    client.force_login(holder)

    with freeze_time(PERIOD_OVER):
        form = client.get(url("withdraw_confirm", "eu")).context["form"]
        preselected = client.get(url("withdraw_confirm", "eu"), {"contract": theirs.pk})

    assert "contract" not in form.fields
    assert preselected.status_code == 404


def test_a_contract_is_preselected_for_its_holder_and_404_for_anyone_else(
    client: Client, holder: User
) -> None:
    theirs = eu_contract(holder)
    other = eu_contract(make_user())
    client.force_login(holder)

    with freeze_time(LAST_INSTANT):
        mine = client.get(url("withdraw_confirm", "eu"), {"contract": theirs.pk})
        not_mine = client.get(url("withdraw_confirm", "eu"), {"contract": other.pk})

    assert mine.context["form"].initial["contract"] == theirs.pk
    assert not_mine.status_code == 404


def test_a_withdrawal_after_the_period_without_a_login_is_recorded_as_refused(
    client: Client, holder: User
) -> None:
    theirs = eu_contract(holder)

    with freeze_time(PERIOD_OVER):
        response = declare_via(
            client,
            {"contract_number": str(theirs.pk), "name": "Erika", "email": holder.email},
            flow="withdraw",
            policy="eu",
        )

    assert response.status_code == 302
    theirs.refresh_from_db()
    assert (theirs.status, theirs.auto_renew) == (Status.ACTIVE, True)
    declaration = ContractDeclaration.objects.get()
    assert declaration.status == DeclarationStatus.REFUSED
    refusal = AuditEvent.objects.get(kind="declaration_refused")
    assert "withdrawal period ended" in refusal.data["reason"]
