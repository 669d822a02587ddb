import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from renewals.models import (
    AuditCheckpoint,
    AuditEvent,
    Consent,
    RenewalNotice,
    RenewalTerms,
    RevokedVia,
    Subscription,
)
from renewals.services import create_checkpoint, subscribe

from .factories import make_evidence, make_subscription, make_terms, make_user

pytestmark = pytest.mark.django_db

MODELS = [Subscription, RenewalTerms, Consent, RenewalNotice, AuditEvent, AuditCheckpoint]


def url(model, view, *args):
    return reverse(f"admin:renewals_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def subscription():
    terms = make_terms()
    subscription = subscribe(
        make_user("alice"), terms, make_evidence(terms), time_zone="Asia/Shanghai"
    )
    create_checkpoint()
    return subscription


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_pages_load(admin_client, subscription, model):
    assert model.objects.exists()
    assert admin_client.get(url(model, "changelist")).status_code == 200
    obj = model.objects.first()
    assert admin_client.get(url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_nothing_is_added_changed_or_deleted(admin_client, subscription, model):
    obj = model.objects.first()
    assert admin_client.get(url(model, "add")).status_code == 403
    assert admin_client.post(url(model, "change", obj.pk), {}).status_code == 403
    assert admin_client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=obj.pk).exists()


def test_subscription_page_shows_consents_and_notices(admin_client, subscription):
    response = admin_client.get(url(Subscription, "change", subscription.pk))
    assert subscription.consents.get().terms_hash in response.text
    assert subscription.notices.exists()
    for notice in subscription.notices.all():
        assert notice.rule_id in response.text


def test_search_by_username_and_gateway_id(admin_client, subscription):
    other = make_subscription(gateway_subscription_id="sub_123")
    changelist = url(Subscription, "changelist")
    assert list(admin_client.get(changelist, {"q": "alice"}).context["cl"].result_list) == [
        subscription
    ]
    assert list(admin_client.get(changelist, {"q": "sub_123"}).context["cl"].result_list) == [other]


def test_action_switches_auto_renewal_off(admin_client, subscription):
    already_off = make_subscription(auto_renew=False)
    response = admin_client.post(
        url(Subscription, "changelist"),
        {
            "action": "switch_auto_renewal_off",
            "_selected_action": [subscription.pk, already_off.pk],
        },
        follow=True,
    )
    subscription.refresh_from_db()
    assert not subscription.auto_renew
    consent = subscription.consents.get()
    assert consent.revoked_via == RevokedVia.ADMIN
    assert consent.revoked_by == response.wsgi_request.user
    assert "Auto-renewal switched off for 1 of 2 selected subscriptions." in response.text


def test_action_needs_the_change_permission(client, subscription):
    staff = make_user(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_subscription"))
    client.force_login(staff)
    changelist = url(Subscription, "changelist")
    assert "switch_auto_renewal_off" not in client.get(changelist).text

    staff.user_permissions.add(Permission.objects.get(codename="change_subscription"))
    assert "switch_auto_renewal_off" in client.get(changelist).text
