"""The demo's pages: thin views over ``renewals.forms`` and ``renewals.services``."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.formats import date_format
from django.views.decorators.http import require_POST

from renewals.exceptions import ConsentError
from renewals.forms import ConsentForm
from renewals.models import RevokedVia, Subscription
from renewals.services import cancel_auto_renewal, subscribe

from .plans import PLANS, current_terms


def plans(request: HttpRequest) -> HttpResponse:
    offers = [(plan, current_terms(plan)) for plan in PLANS]
    return render(request, "example_project/plans.html", {"offers": offers})


@login_required
def subscribe_to_plan(request: HttpRequest, plan: str) -> HttpResponse:
    terms = current_terms(plan)
    form = ConsentForm(request.POST or None, terms=terms)
    if form.is_valid():
        evidence = form.consent_evidence(request, form_id="example_project.subscribe")
        try:
            profile = getattr(request.user, "profile", None)
            time_zone = profile.time_zone if profile else None  # None: the site's zone
            subscribe(
                request.user, terms, evidence, time_zone=time_zone, request_key=form.request_key
            )
        except ConsentError as error:
            messages.error(request, str(error))
            form = ConsentForm(terms=terms)  # ask again, on the terms offered now
        else:
            messages.success(request, f"You subscribed to {terms.service_name}.")
            return redirect("subscriptions")
    return render(request, "example_project/subscribe.html", {"form": form, "terms": terms})


@login_required
def my_subscriptions(request: HttpRequest) -> HttpResponse:
    subscriptions = Subscription.objects.filter(user=request.user).select_related("terms")
    return render(
        request,
        "example_project/subscriptions.html",
        {"subscriptions": subscriptions.order_by("-created_at")},
    )


@login_required
@require_POST
def switch_auto_renewal_off(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(Subscription, pk=pk, user=request.user)
    result = cancel_auto_renewal(subscription, actor=request.user, via=RevokedVia.MANAGE_PAGE)
    if result.service_ends_at:
        ends = date_format(subscription.local(result.service_ends_at), "DATE_FORMAT")
        messages.success(request, f"Auto-renewal is off. Your service runs until {ends}.")
    else:
        messages.success(request, "Auto-renewal is off.")
    return redirect("subscriptions")
