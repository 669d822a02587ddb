"""Absolute links that messages carry: the one place they are built."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import resolve_url
from django.urls import reverse

from .conf import renewals_settings
from .models import RenewalNotice, Subscription
from .tokens import one_click_token


def absolute_url(path: str) -> str:
    """``path`` on the site, absolute from ``RENEWALS["BASE_URL"]``."""
    base = renewals_settings.BASE_URL
    if base is None:
        raise ImproperlyConfigured(
            "RENEWALS['BASE_URL'] is not set: messages need the site's absolute address, "
            "e.g. 'https://example.com'."
        )
    return base + "/" + path.lstrip("/")


def manage_url() -> str:
    """The page where a user manages their subscriptions (``RENEWALS["MANAGE_URL"]``)."""
    return absolute_url(resolve_url(renewals_settings.MANAGE_URL))


def consent_url(subscription: Subscription) -> str:
    """Where a user agrees to the new terms of ``subscription``: its entry on the manage page
    (``RENEWALS["MANAGE_URL"]``), which links to the package's consent page
    (``renewals:accept_new_terms``); a project with its own manage page asks there."""
    return f"{manage_url()}#subscription-{subscription.pk}"


def cancel_url(notice: RenewalNotice) -> str:
    """The one-click link a reminder carries to switch auto-renewal off: the
    ``renewals:one_click_cancel`` page for ``notice``'s token (:mod:`renewals.tokens`).

    The one function that builds it: the SMS text and the push's ``url`` both use it.
    """
    return absolute_url(reverse("renewals:one_click_cancel", args=[one_click_token(notice)]))
