"""The forms of the statutory flows' confirmation pages: who declares, which contract, how.

BGB § 312k (2) names what the cancellation page asks for: the kind of cancellation (and the
reason for an extraordinary one), what identifies the consumer, what identifies the contract,
when it should end, and where the confirmation goes. A withdrawal (Directive 2011/83/EU,
Art. 11a) asks for the consumer and the contract alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from notifications.exceptions import InvalidRecipient
from notifications.phone import normalize
from notifications.recipients import get_resolver

from .conf import renewals_settings
from .models import DeclarationKind, Subscription
from .models.declaration import contract_number
from .policies import CancellationFlow
from .services.declarations import CONTRACT_NUMBER, Statement, contracts_offered
from .types import User

#: The ``ends`` choice that leaves the date to the law: the earliest possible one.
EARLIEST = "earliest"
ON_DATE = "date"


class ContractChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Subscription) -> str:
        return gettext("%(service)s, contract %(number)s") % {
            "service": obj.terms.service_name,
            "number": contract_number(obj),
        }


class DeclarationForm(forms.Form):
    """The consumer and the contract, which every statutory flow asks for.

    A signed-in consumer with contracts the flow can end chooses among them (``contract``) and
    finds their name and contact details filled in; anyone else gives the contract's number,
    which :func:`~renewals.services.declarations.declare` matches against the contact details.
    """

    declaration_kind = DeclarationKind.WITHDRAWAL

    name = forms.CharField(label=_("Full name"), max_length=200)
    email = forms.EmailField(label=_("Email address"), max_length=254, required=False)
    phone = forms.CharField(label=_("Mobile phone number"), max_length=32, required=False)

    def __init__(
        self,
        *args: Any,
        flow: CancellationFlow,
        user: User | None,
        at: dt.datetime,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.at = at
        offered = contracts_offered(user, flow, at) if user is not None else None
        #: The contracts to choose from; ``None`` when the contract is named by its number.
        self.offered = offered if offered is not None and offered.exists() else None
        if self.offered is not None:
            self.fields["contract"] = ContractChoiceField(
                queryset=self.offered.select_related("terms").order_by("pk"),
                label=_("Which contract"),
                empty_label=None,
                widget=forms.RadioSelect,
            )
        else:
            self.fields["contract_number"] = forms.CharField(
                label=_("Contract number"),
                max_length=18,
                validators=[
                    RegexValidator(
                        f"^{CONTRACT_NUMBER.pattern}$",
                        _("Enter the contract number in digits, as our messages show it."),
                    )
                ],
                help_text=_("The number of your subscription, as our pages and messages show it."),
            )
        if user is not None and not self.is_bound:
            self.initial = {**_details_on_file(user), **self.initial}
        self.order_fields(["contract", "contract_number", "name", "email", "phone"])

    def clean_phone(self) -> str:
        phone: str = self.cleaned_data["phone"].strip()
        if not phone:
            return ""
        try:
            return normalize(phone)
        except InvalidRecipient:
            raise ValidationError(
                _("Enter a valid mobile phone number, starting with its country code."),
                code="invalid",
            ) from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        given = any(cleaned.get(f) or self.has_error(f) for f in ("email", "phone"))
        if not given:
            self.add_error(
                "email",
                ValidationError(
                    _("Give your email address or your phone number, so that we can find you."),
                    code="required",
                ),
            )
        return cleaned

    @property
    def chosen_contract(self) -> Subscription | None:
        """The contract chosen from the signed-in consumer's own, if any."""
        contract: Subscription | None = self.cleaned_data.get("contract")
        return contract

    def statement(self) -> Statement:
        """What the valid form declares."""
        data = self.cleaned_data
        chosen = self.chosen_contract
        return Statement(
            kind=self.declaration_kind,
            name=data["name"],
            email=data["email"],
            phone=data["phone"],
            contract_number=contract_number(chosen) if chosen else data["contract_number"],
        )


class CancellationForm(DeclarationForm):
    """Adds what a cancellation declares: its kind, the reason for an extraordinary one, and
    when it should end the contract."""

    kind = forms.TypedChoiceField(
        label=_("Kind of cancellation"),
        choices=[
            (kind.value, capfirst(kind.label))
            for kind in (DeclarationKind.ORDINARY, DeclarationKind.EXTRAORDINARY)
        ],
        coerce=DeclarationKind,
        initial=DeclarationKind.ORDINARY.value,
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label=_("Reason for an extraordinary cancellation"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    ends = forms.ChoiceField(
        label=_("When should the contract end?"),
        choices=[(EARLIEST, _("At the earliest possible date")), (ON_DATE, _("On a later date"))],
        initial=EARLIEST,
        widget=forms.RadioSelect,
    )
    ends_on = forms.DateField(
        label=_("End the contract on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("The contract ends at the end of the term that includes this date."),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind == DeclarationKind.EXTRAORDINARY and not cleaned.get("reason", "").strip():
            self.add_error(
                "reason",
                ValidationError(
                    _("Give the reason for an extraordinary cancellation."), code="required"
                ),
            )
        ends_on = cleaned.get("ends_on")
        if cleaned.get("ends") == ON_DATE:
            today = timezone.localdate(self.at, ZoneInfo(renewals_settings.time_zone_name))
            if ends_on is None and not self.has_error("ends_on"):
                self.add_error(
                    "ends_on",
                    ValidationError(
                        _("Enter the date, or choose the earliest possible date."),
                        code="required",
                    ),
                )
            elif ends_on is not None and ends_on < today:
                self.add_error(
                    "ends_on",
                    ValidationError(_("The date must not be in the past."), code="past"),
                )
        return cleaned

    def statement(self) -> Statement:
        data = self.cleaned_data
        extraordinary = data["kind"] == DeclarationKind.EXTRAORDINARY
        return replace(
            super().statement(),
            kind=data["kind"],
            reason=data["reason"].strip() if extraordinary else "",
            ends_on=data["ends_on"] if data["ends"] == ON_DATE else None,
        )


def _details_on_file(user: User) -> dict[str, str]:
    """The signed-in consumer's name and contact details, to fill the form in."""
    try:
        phone = get_resolver()(user).phone or ""
    except InvalidRecipient:
        phone = ""
    full_name = getattr(user, "get_full_name", lambda: "")()
    return {
        "name": full_name or user.get_username(),
        "email": getattr(user, user.get_email_field_name(), "") or "",
        "phone": phone,
    }
