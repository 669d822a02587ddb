"""Forms that take consent to auto-renewal: an unticked checkbox beside the full disclosure.

The checkbox can never start ticked: :class:`ConsentField` refuses a truthy ``initial``, a
widget rendered ``checked`` and any widget that is not a checkbox, when the field is built and
again when a form binds it. That is what lets :meth:`ConsentFormMixin.consent_evidence` record
``control_initially_unticked=True``.
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.html import strip_tags
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from .conf import renewals_settings
from .models import RenewalTerms
from .periods import first_renewal
from .services import ConsentEvidence

if TYPE_CHECKING:
    from django.forms.boundfield import BoundField

    _FormBase = forms.BaseForm
else:
    _FormBase = object


class ConsentField(forms.BooleanField):
    """A required checkbox that always starts unticked; consent is the user's own act."""

    default_error_messages = {
        "required": _("Tick the box to agree to automatic renewal."),
    }

    def __init__(self, *, required: bool = True, **kwargs: Any) -> None:
        super().__init__(required=required, **kwargs)
        self.ensure_unticked(self.initial)

    def ensure_unticked(self, initial: Any) -> None:
        """Raise :class:`ImproperlyConfigured` unless the control renders as an unticked box."""
        if not isinstance(self.widget, forms.CheckboxInput):
            raise ImproperlyConfigured(
                f"ConsentField needs a CheckboxInput widget, not {type(self.widget).__name__}: "
                "consent is an act the user performs."
            )
        if initial or "checked" in self.widget.attrs:
            raise ImproperlyConfigured(
                "ConsentField must start unticked: pre-ticked consent is not consent."
            )

    def get_bound_field(self, form: forms.BaseForm, field_name: str) -> BoundField:
        self.ensure_unticked(form.get_initial_for_field(self, field_name))
        return super().get_bound_field(form, field_name)


class ConsentFormMixin(_FormBase):
    """Adds auto-renewal consent for ``terms`` to a form, with the disclosure beside it.

    ``first_renewal_at`` (aware) is shown in ``time_zone`` (an IANA name; default
    ``RENEWALS["DEFAULT_TIME_ZONE"]``); without it, the form shows the renewal a subscription
    starting now would have. The hidden ``terms_hash`` is posted back as it was rendered and
    goes into the evidence unchanged: if the terms changed in between,
    :func:`renewals.services.subscribe` raises :class:`~renewals.exceptions.StaleTermsHash`,
    because the user agreed to terms that are no longer the ones offered. A hidden
    ``request_key``, new for every rendered form, makes a double submission start one
    subscription (pass ``form.request_key`` to ``subscribe``). Answer any
    :class:`~renewals.exceptions.ConsentError` with a new, unbound form for the current terms:
    a bound form would post the stale hash again.
    """

    consent_field_name = "auto_renew_consent"
    disclosure_template_name = "renewals/consent_disclosure.html"

    def __init__(
        self,
        *args: Any,
        terms: RenewalTerms,
        first_renewal_at: dt.datetime | None = None,
        time_zone: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if first_renewal_at is not None and timezone.is_naive(first_renewal_at):
            raise ValueError("first_renewal_at must be an aware datetime.")
        self.terms = terms
        self.time_zone = time_zone or renewals_settings.time_zone_name
        zone = ZoneInfo(self.time_zone)
        self.first_renewal_at = first_renewal_at or first_renewal(terms, timezone.now(), zone)
        self.fields[self.consent_field_name] = ConsentField(label=terms.renewal_wording)
        self.fields["terms_hash"] = forms.CharField(
            widget=forms.HiddenInput, initial=terms.content_hash, max_length=64
        )
        self.fields["request_key"] = forms.RegexField(
            regex=r"^[0-9a-f]{32}$",
            widget=forms.HiddenInput,
            initial=uuid.uuid4().hex,
            required=False,
        )
        self.order_fields(self.field_order)
        for name, field in self.fields.items():
            if isinstance(field, ConsentField):
                field.ensure_unticked(self.get_initial_for_field(field, name))

    @property
    def consent_disclosure(self) -> SafeString:
        """The disclosure as HTML, to render beside the checkbox."""
        return render_to_string(
            self.disclosure_template_name,
            {
                "terms": self.terms,
                "first_renewal_at": self.first_renewal_at,
                "time_zone": self.time_zone,
            },
        )

    @property
    def request_key(self) -> str | None:
        """This checkout's key, for ``subscribe(request_key=...)``: a form submitted twice
        starts one subscription (``None`` if a custom template left the hidden field out)."""
        return self.cleaned_data.get("request_key") or None

    def disclosure_text(self) -> str:
        """What the user saw, as plain text kept with the consent: the checkbox's label (the
        renewal wording), then the disclosure, one line per item."""
        text = html.unescape(strip_tags(self.consent_disclosure))
        lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
        return "\n".join([self.terms.renewal_wording, *lines])

    def consent_evidence(
        self, request: HttpRequest, *, channel: str = "web", form_id: str | None = None
    ) -> ConsentEvidence:
        """Evidence of the consent given through this valid form, for ``subscribe()``.

        ``form_id`` names the form or screen; it defaults to the form's dotted class path.
        """
        if not self.is_valid():
            raise ValueError("consent_evidence() needs a bound, valid form.")
        return ConsentEvidence(
            affirmative=self.cleaned_data[self.consent_field_name],
            control_initially_unticked=True,  # ConsentField refuses any other start
            terms_hash=self.cleaned_data["terms_hash"],
            channel=channel,
            form_id=form_id or f"{type(self).__module__}.{type(self).__qualname__}",
            ip_address=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            locale=getattr(request, "LANGUAGE_CODE", None) or translation.get_language() or "",
            disclosure_text=self.disclosure_text(),
        )


class ConsentForm(ConsentFormMixin, forms.Form):
    """A form that asks for nothing but consent to ``terms``."""
