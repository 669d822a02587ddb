"""The demo's own forms: the account's contact details, and push devices."""

from __future__ import annotations

import functools
import re
import zoneinfo

from django import forms
from django.conf import settings
from django.core.validators import RegexValidator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from notifications.exceptions import InvalidRecipient
from notifications.models import Device
from notifications.phone import normalize
from notifications.types import User

from .models import Profile


@functools.cache
def _time_zones() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


def _languages() -> list[tuple[str, str]]:
    return [("", gettext("The site's language")), *settings.LANGUAGES]


class AccountForm(forms.Form):
    """Where the demo reaches a user and how it writes to them: the e-mail address (the
    user's), the phone number, time zone and language (the :class:`Profile`'s)."""

    email = forms.EmailField(label=_("Email address"), required=False)
    phone_number = forms.CharField(
        label=_("Mobile phone number"),
        required=False,
        max_length=32,
        help_text=_("For the reminders by SMS, e.g. +86 138 0013 8000."),
    )
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        choices=_time_zones,
        help_text=_(
            "Reminders go out in the daytime here. Subscriptions you start from now on use it."
        ),
    )
    language = forms.ChoiceField(
        label=_("Language of messages"), choices=_languages, required=False
    )

    def clean_phone_number(self) -> str:
        number: str = self.cleaned_data["phone_number"].strip()
        if not number:
            return ""
        try:
            return normalize(number)
        except InvalidRecipient:
            raise forms.ValidationError(
                _(
                    "Enter a mobile number that can receive SMS, with its country code, "
                    "e.g. +86 138 0013 8000."
                ),
                code="invalid_phone",
            ) from None

    @classmethod
    def initial_for(cls, user: User, profile: Profile) -> dict[str, str]:
        return {
            "email": user.email,
            "phone_number": profile.phone_number,
            "time_zone": profile.time_zone,
            "language": profile.language,
        }

    def save(self, user: User, profile: Profile) -> None:
        user.email = self.cleaned_data["email"]
        user.save(update_fields=["email"])
        for field in ("phone_number", "time_zone", "language"):
            setattr(profile, field, self.cleaned_data[field])
        profile.save()


class DeviceForm(forms.Form):
    """A push token, as an app install registers it through the API
    (``POST /api/v1/devices/``); in the demo, any text stands for one."""

    platform = forms.ChoiceField(label=_("Platform"), choices=Device.Platform.choices)
    provider = forms.ChoiceField(
        label=_("Push service"),
        choices=[("fcm", "Firebase Cloud Messaging"), ("apns", "Apple Push"), ("jpush", "JPush")],
    )
    token = forms.CharField(
        label=_("Push token"),
        max_length=512,
        help_text=_(
            "What the app got from its push service; in this demo, any text without spaces."
        ),
        validators=[
            RegexValidator(
                re.compile(r"^[\x21-\x7e]+$"),
                _("A push token is printable ASCII without spaces."),
                code="invalid_token",
            )
        ],
    )
