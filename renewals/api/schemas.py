"""The API's request and response bodies; the OpenAPI document is generated from them.

Requests are strict: JSON types are not coerced ("true" is not ``true``) and unknown fields
are refused, so a misspelt field of a consent fails loudly instead of being ignored.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from django.http import HttpRequest
from django.utils import translation
from pydantic import BaseModel, ConfigDict, Field

from notifications import models as notification_models

from .. import models
from ..models.terms import format_amount
from ..services import ConsentEvidence

#: The longest screen id and app version: joined by "@", they fit Consent.form_id.
_SCREEN_MAX, _VERSION_MAX = 120, 40
_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"

Platform = notification_models.Device.Platform


class StrictBody(BaseModel):
    """A request body: no coercion between JSON types, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Notice(BaseModel):
    """A reminder the rules require before a renewal, and where it stands."""

    rule: str = Field(description="The rule pack's notice rule.")
    renewal_at: dt.datetime = Field(description="The renewal it announces.")
    send_at: dt.datetime = Field(description="When it is planned to go out.")
    status: models.NoticeStatus
    channels: list[str] = Field(description="The channels it goes out on, such as 'sms'.")
    given_at: dt.datetime | None = Field(
        description="When it counted as given (accepted by a provider, or delivered)."
    )

    @classmethod
    def of(cls, notice: models.RenewalNotice, subscription: models.Subscription) -> Notice:
        given = notice.given_at
        return cls(
            rule=notice.rule_id,
            renewal_at=subscription.local(notice.renewal_at),
            send_at=subscription.local(notice.send_at),
            status=models.NoticeStatus(notice.status),
            channels=list(notice.channels),
            given_at=subscription.local(given) if given else None,
        )


class Subscription(BaseModel):
    """One of the user's subscriptions. Times carry the offset of the subscription's zone."""

    id: int
    service_name: str
    status: models.Status
    amount: str = Field(
        pattern=r"^\d+(\.\d+)?$", description="What the next renewal charges, as a decimal."
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217.")
    interval: models.Interval
    interval_count: int = Field(ge=1)
    next_renewal_at: dt.datetime | None
    time_zone: str = Field(description="The user's IANA zone, such as 'Asia/Shanghai'.")
    auto_renew: bool
    consent_given_at: dt.datetime | None = Field(
        description="When the consent that auto-renewal now rests on was given; null while off."
    )
    terms_hash: str = Field(
        description=(
            "The hash of the terms the next renewal is charged at (amount, currency and "
            "interval above): a resume consents to exactly these."
        )
    )
    notices: list[Notice] = Field(
        description="Reminders planned and sent; withdrawn ones left out."
    )

    @classmethod
    def of(cls, subscription: models.Subscription) -> Subscription:
        """``subscription`` with its ``notices`` and ``consents`` as ``subscriptions_of``
        prefetches them."""
        terms = subscription.renewal_terms()
        consents = list(subscription.consents.all())
        return cls(
            id=subscription.pk,
            service_name=terms.service_name,
            status=models.Status(subscription.status),
            amount=format_amount(terms.amount, terms.currency),
            currency=terms.currency,
            interval=models.Interval(terms.interval),
            interval_count=terms.interval_count,
            next_renewal_at=(
                subscription.local(subscription.next_renewal_at)
                if subscription.next_renewal_at
                else None
            ),
            time_zone=subscription.time_zone,
            auto_renew=subscription.auto_renew,
            consent_given_at=subscription.local(consents[0].granted_at) if consents else None,
            terms_hash=terms.content_hash,
            notices=[Notice.of(notice, subscription) for notice in subscription.notices.all()],
        )


class SubscriptionList(BaseModel):
    subscriptions: list[Subscription]


class UiIdentity(StrictBody):
    """Which screen of which app build showed the disclosure and took the consent."""

    screen: Annotated[str, Field(min_length=1, max_length=_SCREEN_MAX, pattern=_PRINTABLE)]
    app_version: Annotated[str, Field(max_length=_VERSION_MAX, pattern=_PRINTABLE)] | None = None

    @property
    def form_id(self) -> str:
        return f"{self.screen}@{self.app_version}" if self.app_version else self.screen


class ResumeRequest(StrictBody):
    """Fresh consent to auto-renewal, as the app's consent screen took it."""

    terms_hash: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="The subscription's terms_hash: the terms the screen showed.",
    )
    affirmative: Literal[True] = Field(
        description="The user ticked the control: consent is an affirmative act."
    )
    control_initially_unticked: Literal[True] = Field(
        description="The control was shown unticked: pre-ticked consent is no consent."
    )
    ui: UiIdentity
    locale: str | None = Field(
        default=None,
        max_length=16,
        pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$",
        description="The language the screen was shown in; default: the request's.",
    )
    disclosure_text: str = Field(
        default="", max_length=10_000, description="The disclosure shown beside the control."
    )

    def evidence(self, request: HttpRequest) -> ConsentEvidence:
        """The consent evidence, with the address and user agent the request came from."""
        return ConsentEvidence(
            affirmative=self.affirmative,
            control_initially_unticked=self.control_initially_unticked,
            terms_hash=self.terms_hash,
            channel=models.ConsentChannel.APP,
            form_id=self.ui.form_id,
            ip_address=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            locale=self.locale
            or getattr(request, "LANGUAGE_CODE", None)
            or translation.get_language()
            or "",
            disclosure_text=self.disclosure_text,
        )


class DeviceRegistration(StrictBody):
    """A push token the app install got from its provider."""

    platform: Platform
    provider: str = Field(
        min_length=1,
        max_length=32,
        pattern=r"^[a-z0-9_-]+$",
        description="The push provider whose token this is, such as 'fcm', 'apns' or 'jpush'.",
    )
    token: str = Field(min_length=1, max_length=512, pattern=r"^[\x21-\x7e]+$")


class Device(BaseModel):
    """A registered push device; the token is not repeated back."""

    id: int
    platform: Platform
    provider: str
    active: bool
    registered_at: dt.datetime
    last_seen_at: dt.datetime | None

    @classmethod
    def of(cls, device: notification_models.Device) -> Device:
        return cls(
            id=device.pk,
            platform=Platform(device.platform),
            provider=device.provider,
            active=device.active,
            registered_at=device.created_at,
            last_seen_at=device.last_seen_at,
        )
