"""Forms that take consent to auto-renewal: an unticked checkbox beside the full disclosure.

Consent counts only as what the page really showed and what the user really did:

- :class:`ConsentField` renders its widget as the form will and refuses to be used
  (``ImproperlyConfigured``) if that comes out ticked, whatever made it so: an ``initial``, a
  ``checked`` attribute, a ``check_test``, an overridden template. It never renders a posted
  tick back either. That is what lets :meth:`ConsentFormMixin.consent_evidence` record
  ``control_initially_unticked=True``.
- The box counts as ticked only when it is posted with exactly the value it renders
  (:class:`ConsentCheckbox`): ``0``, ``off``, ``no`` or ``on`` are "not ticked".
- The disclosure shown beside the box is signed into the page (:class:`Disclosure`); the
  evidence keeps that one, rebuilt from the signed values, not one rendered again when the
  form is posted (a page shown before midnight states the first day's dates).
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from django import forms
from django.core import signing
from django.core.exceptions import ImproperlyConfigured, ValidationError
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

#: The salt of the signed disclosure: its signatures are good for nothing else.
DISCLOSURE_SALT = "renewals.forms.Disclosure"


class _InputTags(HTMLParser):
    """The attributes of each ``<input>`` in an HTML fragment."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input":
            self.inputs.append(dict(attrs))


class ConsentCheckbox(forms.CheckboxInput):
    """A checkbox rendered with ``value="yes"`` that counts as ticked only when exactly that
    one value is posted.

    Django's ``CheckboxInput`` renders no value (browsers then post ``on``) and reads any
    posted value but ``false`` as ticked, so ``0``, ``off`` or ``no`` would count as consent.
    """

    checked_value = "yes"

    def __init__(
        self,
        attrs: dict[str, Any] | None = None,
        check_test: Callable[[Any], bool] | None = None,
    ) -> None:
        super().__init__({**(attrs or {}), "value": self.checked_value}, check_test)

    def value_from_datadict(self, data: Mapping[str, Any], files: Any, name: str) -> bool:
        getlist = getattr(data, "getlist", None)
        posted = getlist(name) if getlist else [data[name]] if name in data else []
        return bool(posted == [self.checked_value])


class _RendersInitial:
    """A field that a bound form renders with its initial value, never the posted one."""

    def bound_data(self, data: Any, initial: Any) -> Any:
        return initial


class ConsentField(_RendersInitial, forms.BooleanField):
    """A required checkbox that is never rendered ticked; consent is the user's own act.

    Re-rendered after an error, the box is unticked again and the user ticks it again.
    """

    # A class here, an instance once the field is built: Any, as django-stubs types it.
    widget: Any = ConsentCheckbox
    default_error_messages = {
        "required": _("Tick the box to agree to automatic renewal."),
    }

    def __init__(self, *, required: bool = True, **kwargs: Any) -> None:
        super().__init__(required=required, **kwargs)
        if not isinstance(self.widget, ConsentCheckbox):
            raise ImproperlyConfigured(
                f"ConsentField needs a ConsentCheckbox widget, not {type(self.widget).__name__}: "
                "consent is a box the user ticks."
            )
        self.ensure_unticked(self.checkbox.render("consent", self.initial))

    @property
    def checkbox(self) -> ConsentCheckbox:
        """The widget: a :class:`ConsentCheckbox`, as ``__init__`` checked."""
        return cast(ConsentCheckbox, self.widget)

    def ensure_unticked(self, rendered: str) -> None:
        """Raise :class:`ImproperlyConfigured` unless ``rendered``, this field's widget as
        rendered, is one unticked checkbox posting the one value the widget accepts."""
        inputs = _InputTags(rendered).inputs
        if [attrs.get("type") for attrs in inputs] != ["checkbox"]:
            raise ImproperlyConfigured(f"ConsentField must render one checkbox, not {rendered}")
        if "checked" in inputs[0]:
            raise ImproperlyConfigured(
                "ConsentField must render unticked: pre-ticked consent is not consent."
            )
        if inputs[0].get("value") != self.checkbox.checked_value:
            raise ImproperlyConfigured(
                f'ConsentField must render value="{self.checkbox.checked_value}", '
                "the one value it accepts as ticked."
            )

    def ensure_unticked_in(self, form: forms.BaseForm, field_name: str) -> None:
        """Render the box as ``form`` renders it (its initial value, its template renderer)
        and check it with :meth:`ensure_unticked`."""
        initial = form.get_initial_for_field(self, field_name)
        self.ensure_unticked(
            self.checkbox.render(
                form.add_prefix(field_name), self.prepare_value(initial), renderer=form.renderer
            )
        )

    def get_bound_field(self, form: forms.BaseForm, field_name: str) -> BoundField:
        self.ensure_unticked_in(form, field_name)
        return super().get_bound_field(form, field_name)


class _DisclosureTokenField(_RendersInitial, forms.CharField):
    """The signed disclosure, hidden; it renders the one its form shows, not the posted one."""

    widget = forms.HiddenInput


@dataclass(frozen=True)
class Disclosure:
    """What a consent form shows beside its box, signed into the page as it was rendered."""

    terms: RenewalTerms
    first_renewal_at: dt.datetime  # aware
    time_zone: str  # the IANA zone the first renewal is shown in
    trial: bool  # the terms' free trial is offered (False: the user already had it)
    shown_at: dt.datetime  # when the form was rendered

    @property
    def trial_days(self) -> int:
        """The free trial offered, in days (0: none)."""
        return self.terms.trial_days if self.trial else 0

    @property
    def trial_withheld(self) -> bool:
        """The terms have a free trial, but not for this user: they already had it."""
        return bool(self.terms.trial_days) and not self.trial

    def sign(self) -> str:
        return signing.Signer(salt=DISCLOSURE_SALT).sign_object(
            {
                "terms": self.terms.content_hash,
                "renews": self.first_renewal_at.isoformat(),
                "zone": self.time_zone,
                "trial": self.trial,
                "shown": self.shown_at.isoformat(),
            },
            compress=True,
        )

    @classmethod
    def unsign(cls, token: str, terms: RenewalTerms) -> Disclosure:
        """The disclosure of ``terms`` that ``token`` was signed from.

        Raises :class:`ValidationError`: ``tampered`` (or missing), ``expired`` (rendered
        more than ``RENEWALS["CONSENT_FORM_MAX_AGE"]`` seconds ago) or ``terms_changed``.
        """
        try:
            values = signing.Signer(salt=DISCLOSURE_SALT).unsign_object(token)
            disclosure = cls(
                terms=terms,
                first_renewal_at=dt.datetime.fromisoformat(values["renews"]),
                time_zone=str(values["zone"]),
                trial=bool(values["trial"]),
                shown_at=dt.datetime.fromisoformat(values["shown"]),
            )
            shown_hash = values["terms"]
        except (signing.BadSignature, KeyError, TypeError, ValueError):
            raise ValidationError(
                _(
                    "This form could not be verified. Read the terms below again and tick the "
                    "box if you agree."
                ),
                code="tampered",
            ) from None
        max_age = dt.timedelta(seconds=renewals_settings.CONSENT_FORM_MAX_AGE)
        if timezone.now() - disclosure.shown_at > max_age:
            raise ValidationError(
                _(
                    "This page was shown too long ago. Read the terms below again and tick the "
                    "box if you agree."
                ),
                code="expired",
            )
        if shown_hash != terms.content_hash:
            raise ValidationError(
                _(
                    "The terms changed after this page was shown. Read the new terms below and "
                    "tick the box if you agree."
                ),
                code="terms_changed",
            )
        return disclosure


class ConsentFormMixin(_FormBase):
    """Adds auto-renewal consent for ``terms`` to a form, with the disclosure beside it.

    ``first_renewal_at`` (aware) is shown in ``time_zone`` (an IANA name; default
    ``RENEWALS["DEFAULT_TIME_ZONE"]``); without it, the form shows the renewal a subscription
    starting now would have. ``trial=False`` offers the terms without their free trial (the
    user already had it, see :func:`renewals.services.trial_available`) and says so.

    The hidden ``disclosure_token`` signs what the form shows (:class:`Disclosure`); once the
    form is posted, :attr:`agreed_disclosure` is that one, so the evidence keeps what the user
    saw. A token tampered with, older than ``RENEWALS["CONSENT_FORM_MAX_AGE"]`` or made for
    other terms is a form error, and the form shows the current disclosure again. A hidden
    ``request_key``, new for every rendered form, makes a double submission start one
    subscription (pass ``form.request_key`` to ``subscribe``). Answer any
    :class:`~renewals.exceptions.ConsentError` from a service with a new, unbound form.
    Subclasses that override ``clean()`` call ``super().clean()``.
    """

    consent_field_name = "auto_renew_consent"
    disclosure_template_name = "renewals/consent_disclosure.html"

    def __init__(
        self,
        *args: Any,
        terms: RenewalTerms,
        first_renewal_at: dt.datetime | None = None,
        time_zone: str | None = None,
        trial: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if first_renewal_at is not None and timezone.is_naive(first_renewal_at):
            raise ValueError("first_renewal_at must be an aware datetime.")
        self.terms = terms
        time_zone = time_zone or renewals_settings.time_zone_name
        trial = trial and terms.trial_days > 0
        now = timezone.now()
        #: What this form shows and signs into its hidden ``disclosure_token``.
        self.disclosure = Disclosure(
            terms=terms,
            first_renewal_at=(
                first_renewal_at or first_renewal(terms, now, ZoneInfo(time_zone), trial=trial)
            ),
            time_zone=time_zone,
            trial=trial,
            shown_at=now,
        )
        self.fields[self.consent_field_name] = ConsentField(label=terms.renewal_wording)
        self.fields["disclosure_token"] = _DisclosureTokenField(
            initial=self.disclosure.sign(), required=False
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
                field.ensure_unticked_in(self, name)

    def clean(self) -> dict[str, Any]:
        super().clean()
        self.cleaned_data["disclosure_token"] = Disclosure.unsign(
            self.cleaned_data.get("disclosure_token") or "", self.terms
        )
        return self.cleaned_data

    @property
    def consent_field(self) -> BoundField:
        """The consent checkbox, for templates (``{{ form.consent_field }}``)."""
        return self[self.consent_field_name]

    @property
    def agreed_disclosure(self) -> Disclosure:
        """The disclosure the posted page showed, as signed into it; needs a valid form."""
        if not self.is_valid():
            raise ValueError("agreed_disclosure needs a bound, valid form.")
        disclosure: Disclosure = self.cleaned_data["disclosure_token"]
        return disclosure

    @property
    def consent_disclosure(self) -> SafeString:
        """The disclosure this form shows, as HTML, to render beside the checkbox."""
        return self.render_disclosure(self.disclosure)

    def render_disclosure(self, disclosure: Disclosure) -> SafeString:
        return render_to_string(
            self.disclosure_template_name,
            {
                "disclosure": disclosure,
                "terms": disclosure.terms,
                "first_renewal_at": disclosure.first_renewal_at,
                "time_zone": disclosure.time_zone,
            },
        )

    @property
    def request_key(self) -> str | None:
        """This checkout's key, for ``subscribe(request_key=...)``: a form submitted twice
        starts one subscription (``None`` if a custom template left the hidden field out)."""
        return self.cleaned_data.get("request_key") or None

    def disclosure_text(self, disclosure: Disclosure | None = None) -> str:
        """``disclosure`` (default: the one this form shows) as plain text kept with the
        consent: the checkbox's label (the renewal wording), then one line per item."""
        disclosure = disclosure or self.disclosure
        text = html.unescape(strip_tags(self.render_disclosure(disclosure)))
        lines = [" ".join(line.split()) for line in text.splitlines() if line.strip()]
        return "\n".join([disclosure.terms.renewal_wording, *lines])

    def consent_evidence(
        self, request: HttpRequest, *, channel: str = "web", form_id: str | None = None
    ) -> ConsentEvidence:
        """Evidence of the consent given through this valid form, for ``subscribe()``: the
        disclosure it records is the one the posted page showed.

        ``form_id`` names the form or screen; it defaults to the form's dotted class path.
        """
        agreed = self.agreed_disclosure
        return ConsentEvidence(
            affirmative=self.cleaned_data[self.consent_field_name],
            control_initially_unticked=True,  # ConsentField refuses any other rendering
            terms_hash=agreed.terms.content_hash,
            channel=channel,
            form_id=form_id or f"{type(self).__module__}.{type(self).__qualname__}",
            ip_address=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            locale=getattr(request, "LANGUAGE_CODE", None) or translation.get_language() or "",
            disclosure_text=self.disclosure_text(agreed),
        )


class ConsentForm(ConsentFormMixin, forms.Form):
    """A form that asks for nothing but consent to ``terms``."""
