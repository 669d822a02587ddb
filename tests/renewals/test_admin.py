import pytest
from django.contrib.auth.models import Permission
from django.db.models import Model
from django.test import Client
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
from renewals.services import create_checkpoint

from .factories import make_subscription, make_user

pytestmark = pytest.mark.django_db

MODELS = [Subscription, RenewalTerms, Consent, RenewalNotice, AuditEvent, AuditCheckpoint]


def url(model: type[Model], view: str, *args: object) -> str:
    return reverse(f"admin:renewals_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def every_model(subscription: Subscription) -> None:
    """A row of each model: the shared subscription (its terms, consent, notice and audit
    events), and a checkpoint."""
    create_checkpoint()


@pytest.mark.usefixtures("every_model")
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_and_change_pages_load(admin_client: Client, model: type[Model]) -> None:
    assert model._default_manager.exists()
    assert admin_client.get(url(model, "changelist")).status_code == 200
    obj = model._default_manager.first()
    assert obj is not None
    assert admin_client.get(url(model, "change", obj.pk)).status_code == 200


@pytest.mark.usefixtures("every_model")
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_nothing_is_added_changed_or_deleted(admin_client: Client, model: type[Model]) -> None:
    obj = model._default_manager.first()
    assert obj is not None
    assert admin_client.get(url(model, "add")).status_code == 403
    assert admin_client.post(url(model, "change", obj.pk), {}).status_code == 403
    assert admin_client.post(url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    assert model._default_manager.filter(pk=obj.pk).exists()


def test_subscription_page_shows_consents_and_notices(
    admin_client: Client, subscription: Subscription
) -> None:
    response = admin_client.get(url(Subscription, "change", subscription.pk))
    assert subscription.consents.get().terms_hash in response.text
    assert subscription.notices.exists()
    for notice in subscription.notices.all():
        assert notice.rule_id in response.text


def test_search_by_username_and_gateway_id(
    admin_client: Client, subscription: Subscription
) -> None:
    other = make_subscription(gateway_subscription_id="sub_123")
    changelist = url(Subscription, "changelist")
    by_username = {"q": subscription.user.get_username()}
    assert list(admin_client.get(changelist, by_username).context["cl"].result_list) == [
        subscription
    ]
    assert list(admin_client.get(changelist, {"q": "sub_123"}).context["cl"].result_list) == [other]


def test_action_switches_auto_renewal_off(admin_client: Client, subscription: Subscription) -> None:
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


def test_action_needs_the_change_permission(client: Client, subscription: Subscription) -> None:
    staff = make_user(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_subscription"))
    client.force_login(staff)
    changelist = url(Subscription, "changelist")
    assert "switch_auto_renewal_off" not in client.get(changelist).text

    staff.user_permissions.add(Permission.objects.get(codename="change_subscription"))
    assert "switch_auto_renewal_off" in client.get(changelist).text
