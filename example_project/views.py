"""The demo's pages: thin views over ``renewals.forms``, ``renewals.services`` and the demo's
own forms.

The demo's own pages are the plans, the checkout, sign-up, the account (contact details and
push devices), the inbox (every SMS, push and email the database backends stored) and the
time machine; "My subscriptions" is the package's manage page (``renewals:manage``), shown in the
demo's layout by ``templates/renewals/base.html``.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.timesince import timeuntil
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from notifications import devices
from notifications.models import Device, OutboxMessage
from notifications.types import User
from renewals.exceptions import (
    AlreadySubscribed,
    CheckoutKeyReused,
    ConsentError,
    GatewayRefused,
    GatewayUnavailable,
)
from renewals.forms import ConsentForm
from renewals.services import subscribe, trial_available
from renewals.services.stripe_checkout import start_stripe_subscription
from renewals.types import AuthenticatedHttpRequest

from .forms import AccountForm, DeviceForm
from .models import Profile
from .plans import PLANS, current_terms
from .stripe_mode import stripe_customer
from .time_machine import Jump, jump_to_next_reminder

#: Messages per page of the inbox.
INBOX_PAGE_SIZE = 20


def plans(request: HttpRequest) -> HttpResponse:
    offers = [(plan, current_terms(plan)) for plan in PLANS]
    return render(request, "example_project/plans.html", {"offers": offers})


@login_required
def subscribe_to_plan(request: AuthenticatedHttpRequest, plan: str) -> HttpResponse:
    terms = current_terms(plan)
    profile = Profile.objects.filter(user=request.user).first()
    time_zone = profile.time_zone if profile else None  # None: the site's zone

    def consent_form(data: QueryDict | None = None) -> ConsentForm:
        """The offer of ``terms`` with its unticked box (bound to ``data``, if posted)."""
        trial = trial_available(request.user, terms)
        return ConsentForm(data, terms=terms, time_zone=time_zone, trial=trial)

    form = consent_form(request.POST or None)
    context: dict[str, object] = {"terms": terms}
    if form.is_valid():
        try:
            customer = stripe_customer(request.user)  # None: billed here, no processor
            subscription = subscribe(
                request.user,
                terms,
                form.consent_evidence(request, form_id="example_project.subscribe"),
                time_zone=time_zone,
                request_key=form.request_key,
                trial=form.agreed_disclosure.trial,
            )
            if customer is not None:
                start_stripe_subscription(subscription, customer=customer)
        except AlreadySubscribed as refused:
            context["existing"] = refused.existing
        except CheckoutKeyReused:
            messages.error(
                request, _("This checkout was already used. Please read the terms again.")
            )
        except ConsentError:  # e.g. the free trial, taken meanwhile in another tab
            messages.error(request, _("The offer changed. Please read the terms again."))
        except GatewayUnavailable:  # the same checkout, sent again, starts it at Stripe
            messages.error(request, _("Stripe could not be reached. Please try again."))
            return render(request, "example_project/subscribe.html", {**context, "form": form})
        except GatewayRefused as refused:  # a declined card: nothing started at Stripe
            messages.error(request, str(refused))
        else:
            if profile:  # the demo writes to users in the language they subscribed in
                profile.language = get_language()
                profile.save(update_fields=["language"])
            messages.success(
                request, _("You subscribed to %(service)s.") % {"service": terms.service_name}
            )
            return redirect("renewals:manage")
        form = consent_form()  # asked again on the terms offered now, with an unticked box
    return render(request, "example_project/subscribe.html", {**context, "form": form})


def sign_up(request: HttpRequest) -> HttpResponse:
    """A new user, signed in at once, with a profile in the site's zone and the page's
    language; then the account page, to add a phone number or a device."""
    form: UserCreationForm[User] = UserCreationForm(request.POST or None)
    if form.is_valid():
        user = form.save()
        Profile.objects.create(
            user=user, time_zone=settings.TIME_ZONE, language=get_language() or ""
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(
            request,
            _("Welcome, %(username)s. Add a phone number or a device so the reminders reach you.")
            % {"username": user.get_username()},
        )
        return redirect("account")
    return render(request, "example_project/signup.html", {"form": form})


def _profile(user: User) -> Profile:
    """The user's profile; a new one in the site's zone (not saved) if they have none."""
    return Profile.objects.filter(user=user).first() or Profile(
        user=user, time_zone=settings.TIME_ZONE
    )


@login_required
def account(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The contact details the reminders go to, and the push devices: GET shows them, POST
    saves the details (a form with errors is shown again, nothing saved)."""
    profile = _profile(request.user)
    form = AccountForm(request.POST or None, initial=AccountForm.initial_for(request.user, profile))
    if form.is_valid():
        form.save(request.user, profile)
        messages.success(request, _("Your account details are saved."))
        return redirect("account")
    return _account_page(request, form, DeviceForm())


def _account_page(
    request: AuthenticatedHttpRequest, form: AccountForm, device_form: DeviceForm
) -> HttpResponse:
    registered = Device.objects.filter(user=request.user, active=True).order_by("pk")
    context = {"form": form, "device_form": device_form, "devices": registered}
    return render(request, "example_project/account.html", context)


@login_required
@require_POST
def add_device(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Register a push device, as the app does through ``POST /api/v1/devices/``."""
    device_form = DeviceForm(request.POST)
    if not device_form.is_valid():
        profile = _profile(request.user)
        form = AccountForm(initial=AccountForm.initial_for(request.user, profile))
        return _account_page(request, form, device_form)
    device, _created = devices.register_device(request.user, **device_form.cleaned_data)
    messages.success(
        request, _("The device %(device)s gets the push messages now.") % {"device": device}
    )
    return redirect("account")


@login_required
@require_POST
def remove_device(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    """Stop sending push messages to one of the user's devices; another's is a 404."""
    device = get_object_or_404(Device, pk=pk, user=request.user)
    devices.remove_device(device)
    messages.success(
        request, _("The device %(device)s gets no more push messages.") % {"device": device}
    )
    return redirect("account")


@login_required
def inbox(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every message the database backends stored for the user (for staff, everyone's),
    newest first: the demo's phone, and e-mail."""
    stored = OutboxMessage.objects.select_related("delivery__user").order_by("-created_at", "-pk")
    if not request.user.is_staff:
        stored = stored.filter(delivery__user=request.user)
    page = Paginator(stored, INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "example_project/inbox.html", {"page": page})


@require_POST
def time_machine(request: HttpRequest) -> HttpResponse:
    """Demo only (``settings.DEMO_TIME_MACHINE``): move the demo's clock to the next
    reminder of the user's subscriptions (anyone's, for staff) and send it; then the inbox."""
    if not getattr(settings, "DEMO_TIME_MACHINE", False):
        raise Http404("The time machine is off.")
    if not request.user.is_authenticated:
        raise PermissionDenied
    jump = jump_to_next_reminder(request.user)
    level, text = _jumped(jump)
    messages.add_message(request, level, text)
    return redirect("inbox")


def _jumped(jump: Jump) -> tuple[int, str]:
    """A message saying what the time machine did."""
    if jump.notice is None:
        return messages.WARNING, _(
            "No reminder is planned: subscribe to a plan, with auto-renewal on, first."
        )
    values = {
        "service": jump.notice.subscription.terms.service_name,
        "status": jump.notice.get_status_display(),
    }
    if jump.moved_by:
        now = timezone.now()
        values["ahead"] = timeuntil(now, now - jump.moved_by)
        text = _(
            "The demo clock moved forward %(ahead)s, to the reminder of %(service)s. "
            "The reminder: %(status)s."
        )
    else:
        text = _("The reminder of %(service)s was due already. The reminder: %(status)s.")
    return messages.SUCCESS, text % values
