"""The package's pages and API, under the ``renewals`` namespace.

Include them at the site's root (``path("", include("renewals.urls"))``) so the one-click
link a reminder carries stays short: ``https://example.com/c/<token>/``.
"""

from django.urls import path

app_name = "renewals"

urlpatterns: list = [
]
