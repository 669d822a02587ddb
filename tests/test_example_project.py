import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse

from renewals.models import RenewalTerms, RevokedVia

pytestmark = [pytest.mark.django_db, pytest.mark.urls("example_project.urls")]


@pytest.fixture
def demo():
    call_command("demo_setup", verbosity=0)


def test_demo_setup_is_idempotent(demo):
    call_command("demo_setup", verbosity=0)
    users = get_user_model().objects.order_by("username")
    assert [(u.username, u.is_superuser) for u in users] == [("admin", True), ("demo", False)]
    assert all(user.check_password(user.username) for user in users)
    assert RenewalTerms.objects.count() == 2


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
