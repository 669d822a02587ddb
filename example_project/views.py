"""The demo's pages: thin views over ``renewals.forms`` and ``renewals.services``.

The demo's own pages are the plans and the checkout; "My subscriptions" is the package's
manage page (``renewals:manage``), shown in the demo's layout by
``templates/renewals/base.html``.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from renewals.exceptions import AlreadySubscribed, CheckoutKeyReused, ConsentError
from renewals.forms import ConsentForm
from renewals.services import subscribe, trial_available

from .plans import PLANS, current_terms


def plans(request: HttpRequest) -> HttpResponse:
    offers = [(plan, current_terms(plan)) for plan in PLANS]
    return render(request, "example_project/plans.html", {"offers": offers})


@login_required
def subscribe_to_plan(request: HttpRequest, plan: str) -> HttpResponse:
    terms = current_terms(plan)
    profile = getattr(request.user, "profile", None)
    time_zone = profile.time_zone if profile else None  # None: the site's zone
    offer = {"terms": terms, "time_zone": time_zone}
    form = ConsentForm(request.POST or None, **offer, trial=trial_available(request.user, terms))
    context = {"terms": terms}
    if form.is_valid():
        try:
            subscribe(
                request.user,
                terms,
                form.consent_evidence(request, form_id="example_project.subscribe"),
                time_zone=time_zone,
                request_key=form.request_key,
                trial=form.agreed_disclosure.trial,
            )
        except AlreadySubscribed as refused:
            context["existing"] = refused.existing
        except CheckoutKeyReused:
            messages.error(
                request, _("This checkout was already used. Please read the terms again.")
            )
        except ConsentError:  # e.g. the free trial, taken meanwhile in another tab
            messages.error(request, _("The offer changed. Please read the terms again."))
        else:
            if profile:  # the demo writes to users in the language they subscribed in
                profile.language = get_language()
                profile.save(update_fields=["language"])
            messages.success(
                request, _("You subscribed to %(service)s.") % {"service": terms.service_name}
            )
            return redirect("renewals:manage")
        # Ask again on the terms offered now, with an unticked box.
        form = ConsentForm(**offer, trial=trial_available(request.user, terms))
    return render(request, "example_project/subscribe.html", {**context, "form": form})
