"""The API's operations, and the route table that both dispatches and documents them.

Each handler's docstring is its operation's description in the OpenAPI document.
"""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, Prefetch, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

from notifications import devices
from notifications.models import Device

from ..exceptions import IllegalTransition, StaleTermsHash
from ..models import Consent, NoticeStatus, RenewalNotice, RevokedVia, Subscription
from ..services import cancel_auto_renewal, resume_auto_renewal
from ..types import User
from . import schemas
from .errors import ApiError, ErrorCode, not_found
from .routing import Operation, Reply, Route

T = TypeVar("T", bound=Model)


def subscriptions_of(user: User) -> QuerySet[Subscription]:
    """The user's subscriptions, with what :meth:`schemas.Subscription.of` reads."""
    return (
        Subscription.objects.filter(user=user)
        .select_related("terms", "upcoming_terms")
        .prefetch_related(
            Prefetch("notices", RenewalNotice.objects.exclude(status=NoticeStatus.WITHDRAWN)),
            Prefetch("consents", Consent.objects.filter(revoked_at__isnull=True)),
        )
        .order_by("pk")
    )


def _get_or_404(queryset: QuerySet[T], pk: int) -> T:
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise not_found()
    return found


def list_subscriptions(request: HttpRequest, user: User) -> Reply:
    """The user's subscriptions, ended ones included, oldest first."""
    return Reply(
        200,
        schemas.SubscriptionList(
            subscriptions=[schemas.Subscription.of(s) for s in subscriptions_of(user)]
        ),
    )


def get_subscription(request: HttpRequest, user: User, pk: int) -> Reply:
    """One of the user's subscriptions; another user's is not found."""
    return Reply(200, schemas.Subscription.of(_get_or_404(subscriptions_of(user), pk)))


def turn_auto_renew_off(request: HttpRequest, user: User, pk: int) -> Reply:
    """Switch auto-renewal off: the paid term runs out and nothing more is charged.

    Idempotent: when it is already off, nothing changes. The user is sent a confirmation.
    """
    subscription = _get_or_404(Subscription.objects.filter(user=user), pk)
    cancel_auto_renewal(subscription, actor=user, via=RevokedVia.API)
    return get_subscription(request, user, pk)


def turn_auto_renew_on(
    request: HttpRequest, user: User, pk: int, body: schemas.ResumeRequest
) -> Reply:
    """Switch auto-renewal on again, with the user's fresh consent to the terms the next
    renewal is charged at.

    Show the subscription's terms (its amount, currency and interval) with an unticked
    control; send what the screen showed, with its terms_hash, and that the user ticked it.
    A terms_hash that is no longer current is 409 with the current one in the error. When
    auto-renewal is already on, nothing changes.
    """
    subscription = _get_or_404(Subscription.objects.filter(user=user), pk)
    try:
        resume_auto_renewal(subscription, evidence=body.evidence(request), actor=user)
    except StaleTermsHash as exc:
        raise ApiError(
            409,
            ErrorCode.STALE_TERMS,
            _(
                "The terms have changed since they were shown. "
                "Show the current terms and ask again."
            ),
            current_terms_hash=exc.current,
        ) from None
    except IllegalTransition:
        raise ApiError(
            409,
            ErrorCode.NOT_LIVE,
            _("This subscription has ended; auto-renewal cannot be turned on again."),
        ) from None
    return get_subscription(request, user, pk)


def register_device(request: HttpRequest, user: User, body: schemas.DeviceRegistration) -> Reply:
    """Register the app install's push token for the user: 201 if new, else 200.

    Idempotent on the token. A token registered by another user before moves to this one:
    it belongs to the install, on which this user is now signed in.
    """
    device, created = devices.register_device(
        user, platform=body.platform, provider=body.provider, token=body.token
    )
    return Reply(201 if created else 200, schemas.Device.of(device))


def remove_device(request: HttpRequest, user: User, pk: int) -> Reply:
    """Stop sending push notifications to one of the user's devices (on sign-out, say).

    Idempotent; registering the token again turns it back on.
    """
    devices.remove_device(_get_or_404(Device.objects.filter(user=user), pk))
    return Reply(204)


ROUTES: tuple[Route, ...] = (
    Route(
        "subscriptions/",
        "api_subscriptions",
        (
            Operation(
                "GET",
                list_subscriptions,
                "List the user's subscriptions",
                {200: schemas.SubscriptionList},
            ),
        ),
    ),
    Route(
        "subscriptions/<int:pk>/",
        "api_subscription",
        (Operation("GET", get_subscription, "Read a subscription", {200: schemas.Subscription}),),
    ),
    Route(
        "subscriptions/<int:pk>/auto-renew/off/",
        "api_auto_renew_off",
        (
            Operation(
                "POST",
                turn_auto_renew_off,
                "Turn auto-renewal off",
                {200: schemas.Subscription},
            ),
        ),
    ),
    Route(
        "subscriptions/<int:pk>/auto-renew/on/",
        "api_auto_renew_on",
        (
            Operation(
                "POST",
                turn_auto_renew_on,
                "Turn auto-renewal on, with fresh consent",
                {200: schemas.Subscription},
                body=schemas.ResumeRequest,
                errors=(409,),
            ),
        ),
    ),
    Route(
        "devices/",
        "api_devices",
        (
            Operation(
                "POST",
                register_device,
                "Register a push device",
                {200: schemas.Device, 201: schemas.Device},
                body=schemas.DeviceRegistration,
            ),
        ),
    ),
    Route(
        "devices/<int:pk>/",
        "api_device",
        (Operation("DELETE", remove_device, "Remove a push device", {204: None}),),
    ),
)
