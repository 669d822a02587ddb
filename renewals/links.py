"""Absolute links that messages carry: the one place they are built."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import resolve_url

from .conf import renewals_settings
from .models import RenewalNotice


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


def cancel_url(notice: RenewalNotice) -> str:
    """The link a reminder carries to switch auto-renewal off.

    The one function that builds it: the SMS text and the push's ``url`` both use it. Until
    the one-click cancellation view exists it leads to the manage page.
    """
    return manage_url()
