"""The package's pages and API, under the ``renewals`` namespace.

Include them at the site's root (``path("", include("renewals.urls"))``) so the one-click
link a reminder carries stays short: ``https://example.com/c/<token>/``.
"""

from django.urls import URLPattern, URLResolver, include, path

from .views import manage, one_click, statutory
from .webhooks import stripe

app_name = "renewals"

urlpatterns: list[URLPattern | URLResolver] = [
    path("api/v1/", include("renewals.api.urls")),
    path("c/<str:token>/", one_click.one_click_cancel, name="one_click_cancel"),
    path("subscriptions/", manage.manage, name="manage"),
    path("subscriptions/<int:pk>/auto-renew-off/", manage.auto_renew_off, name="auto_renew_off"),
    path("subscriptions/<int:pk>/auto-renew-on/", manage.auto_renew_on, name="auto_renew_on"),
    path("subscriptions/<int:pk>/new-price/", manage.accept_new_terms, name="accept_new_terms"),
    *statutory.urls(statutory.CANCEL_CONTRACT, "cancel-contract"),
    *statutory.urls(statutory.WITHDRAW, "withdraw"),
    path("stripe/webhook/", stripe.stripe_webhook, name="stripe_webhook"),
]
