"""The manage page: a logged-in user's subscriptions, auto-renewal off with one button and on
again with fresh consent.

``subscriptions/`` lists them: service, amount, next renewal in the subscription's zone,
auto-renewal, the consent's date, and the reminders planned and sent.
``subscriptions/<pk>/auto-renew-off/`` (POST) switches auto-renewal off through
:func:`~renewals.services.cancel_auto_renewal`. ``subscriptions/<pk>/auto-renew-on/`` shows
the disclosure of the terms the next renewal is charged at (``renewal_terms()``) with an
unticked box (GET), and switches auto-renewal on through
:func:`~renewals.services.resume_auto_renewal` with that fresh consent (POST).
``subscriptions/<pk>/new-price/`` does the same for a new price that the rule pack requires
consent to while auto-renewal stays on (:func:`~renewals.services.new_price_awaits_consent`),
recording the consent through :func:`~renewals.services.record_consent`; the list links to it,
and the request for that consent links to the list. Another user's subscription is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ..exceptions import IllegalTransition
from ..forms import ConsentForm
from ..models import Consent, RenewalNotice, RevokedVia, Subscription
from ..services import (
    cancel_auto_renewal,
    new_price_awaits_consent,
    record_consent,
    resume_auto_renewal,
)
from ..types import AuthenticatedHttpRequest


@never_cache
@login_required
@require_GET
def manage(request: AuthenticatedHttpRequest) -> HttpResponse:
    subscriptions = (
        _own_subscriptions(request)
        .prefetch_related(
            Prefetch("notices", queryset=RenewalNotice.objects.order_by("send_at", "pk")),
            Prefetch(
                "consents",
                queryset=Consent.objects.filter(revoked_at__isnull=True),
                to_attr="active_consents",
            ),
        )
        .order_by("-created_at", "-pk")
    )
    awaiting = {s.pk for s in subscriptions if s.auto_renew and new_price_awaits_consent(s)}
    return render(
        request,
        "renewals/manage/subscriptions.html",
        {"subscriptions": subscriptions, "new_price_awaits_consent": awaiting},
    )


@login_required
@require_POST
def auto_renew_off(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    subscription = _own_subscription(request, pk)
    result = cancel_auto_renewal(subscription, actor=request.user, via=RevokedVia.MANAGE_PAGE)
    service = subscription.terms.service_name
    if not result.changed:
        messages.info(
            request, _("Auto-renewal of %(service)s was already off.") % {"service": service}
        )
    elif result.service_ends_at:
        messages.success(
            request,
            _(
                "Auto-renewal of %(service)s is off. Nothing more is charged; the service runs "
                "until %(ends)s (%(zone)s time)."
            )
            % {
                "service": service,
                "ends": date_format(subscription.local(result.service_ends_at), "DATETIME_FORMAT"),
                "zone": subscription.time_zone,
            },
        )
    else:
        messages.success(request, _("Auto-renewal of %(service)s is off.") % {"service": service})
    return redirect("renewals:manage")


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def auto_renew_on(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    subscription = _own_subscription(request, pk)
    service = subscription.terms.service_name
    if not subscription.is_live:
        return _ended(request, subscription)
    if subscription.auto_renew:
        messages.info(
            request, _("Auto-renewal of %(service)s is already on.") % {"service": service}
        )
        return redirect("renewals:manage")
    form = ConsentForm(
        request.POST or None,
        terms=subscription.renewal_terms(),  # what the next renewal charges
        first_renewal_at=subscription.next_renewal_at,
        time_zone=subscription.time_zone,
        trial=False,  # the subscription had its trial, if any, when it started
    )
    if form.is_valid():
        evidence = form.consent_evidence(request, form_id="renewals:auto_renew_on")
        try:
            resume_auto_renewal(subscription, evidence=evidence, actor=request.user)
        except IllegalTransition:  # it ended after the page was shown
            return _ended(request, subscription)
        messages.success(request, _("Auto-renewal of %(service)s is on.") % {"service": service})
        return redirect("renewals:manage")
    return render(
        request, "renewals/manage/auto_renew_on.html", {"subscription": subscription, "form": form}
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def accept_new_terms(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    subscription = _own_subscription(request, pk)
    service = subscription.terms.service_name
    if not subscription.is_live:
        return _ended(request, subscription)
    if not subscription.auto_renew:  # switching it on again consents to the new terms
        return redirect("renewals:auto_renew_on", subscription.pk)
    if not new_price_awaits_consent(subscription):
        messages.info(
            request, _("%(service)s has no new price to agree to.") % {"service": service}
        )
        return redirect("renewals:manage")
    terms = subscription.renewal_terms()
    form = ConsentForm(
        request.POST or None,
        terms=terms,
        first_renewal_at=subscription.next_renewal_at,  # the renewal the new price starts at
        time_zone=subscription.time_zone,
        trial=False,
    )
    if form.is_valid():
        evidence = form.consent_evidence(request, form_id="renewals:accept_new_terms")
        try:
            record_consent(subscription, evidence, actor=request.user)
        except IllegalTransition:  # it ended after the page was shown
            return _ended(request, subscription)
        messages.success(
            request,
            _("You agreed to the new price of %(service)s: %(price)s.")
            % {"service": service, "price": terms.price_display},
        )
        return redirect("renewals:manage")
    return render(
        request,
        "renewals/manage/accept_new_terms.html",
        {"subscription": subscription, "terms": terms, "form": form},
    )


def _ended(request: HttpRequest, subscription: Subscription) -> HttpResponse:
    messages.error(
        request,
        _("%(service)s has ended, so it cannot renew again. Subscribe again instead.")
        % {"service": subscription.terms.service_name},
    )
    return redirect("renewals:manage")


def _own_subscriptions(request: HttpRequest) -> QuerySet[Subscription]:
    """The signed-in user's subscriptions, with their terms (an anonymous one has none)."""
    user = request.user
    if not user.is_authenticated:
        return Subscription.objects.none()
    return Subscription.objects.filter(user=user).select_related("terms", "upcoming_terms")


def _own_subscription(request: HttpRequest, pk: int) -> Subscription:
    """The signed-in user's subscription ``pk``; 404 for anyone else's."""
    return get_object_or_404(_own_subscriptions(request), pk=pk)
