"""What the user is shown before agreeing to auto-renewal, frozen with its content hash."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from .base import InsertOnly

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise


class Interval(models.TextChoices):
    DAY = "day", _("day")
    WEEK = "week", _("week")
    MONTH = "month", _("month")
    YEAR = "year", _("year")


#: The price of one term of one interval, and of several: whole phrases, so that every
#: language words them its own way.
_PRICE_PER_INTERVAL: dict[str, _StrPromise] = {
    Interval.DAY: _("%(amount)s per day"),
    Interval.WEEK: _("%(amount)s per week"),
    Interval.MONTH: _("%(amount)s per month"),
    Interval.YEAR: _("%(amount)s per year"),
}
_PRICE_PER_INTERVALS: dict[str, _StrPromise] = {
    Interval.DAY: ngettext_lazy(
        "%(amount)s per %(count)d day", "%(amount)s per %(count)d days", "count"
    ),
    Interval.WEEK: ngettext_lazy(
        "%(amount)s per %(count)d week", "%(amount)s per %(count)d weeks", "count"
    ),
    Interval.MONTH: ngettext_lazy(
        "%(amount)s per %(count)d month", "%(amount)s per %(count)d months", "count"
    ),
    Interval.YEAR: ngettext_lazy(
        "%(amount)s per %(count)d year", "%(amount)s per %(count)d years", "count"
    ),
}

#: The fields whose content the hash commits to, in the order they are shown in the admin.
HASHED_FIELDS = (
    "service_name",
    "amount",
    "currency",
    "interval",
    "interval_count",
    "trial_days",
    "trial_once_per_user",
    "renewal_wording",
    "cancellation_method",
    "locale",
    "stripe_price_id",
)

_CURRENCY = re.compile(r"^[A-Z]{3}$")
#: ISO 4217 currencies without minor units, as Stripe lists them.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)


def format_amount(amount: Decimal, currency: str) -> str:
    """``9.9`` CNY as ``9.90``, ``1000`` JPY as ``1000``; extra precision is kept."""
    places = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    normalized = amount.normalize()
    exponent = normalized.as_tuple().exponent
    if isinstance(exponent, int) and -exponent < places:
        normalized = normalized.quantize(Decimal(1).scaleb(-places))
    return format(normalized, "f")


def validate_currency(value: str) -> None:
    if not _CURRENCY.match(value):
        raise ValidationError(
            _("%(value)r is not an ISO 4217 currency code (three capital letters)."),
            params={"value": value},
        )


class RenewalTermsManager(models.Manager["RenewalTerms"]):
    def snapshot(self, **fields: Any) -> RenewalTerms:
        """The terms row for exactly this content, created on first use.

        Two offers with the same content share one row (and one hash), so the hash a consent
        names is stable however often the offer is shown.
        """
        terms = self.model(**fields)
        terms.full_clean(exclude=["content_hash"], validate_unique=False)
        terms.content_hash = terms.compute_hash()
        existing = self.filter(content_hash=terms.content_hash).first()
        if existing:
            return existing
        try:
            with transaction.atomic():
                terms.save()
        except IntegrityError:
            return self.get(content_hash=terms.content_hash)
        return terms


class RenewalTerms(InsertOnly):
    """An immutable snapshot of an offer: price, interval, trial, renewal wording, how to cancel.

    Create with ``RenewalTerms.objects.snapshot(...)``; a saved row is never updated.
    """

    service_name = models.CharField(_("service name"), max_length=200)
    amount = models.DecimalField(_("amount per term"), max_digits=14, decimal_places=4)
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    interval = models.CharField(_("interval"), max_length=8, choices=Interval.choices)
    interval_count = models.PositiveSmallIntegerField(_("intervals per term"), default=1)
    trial_days = models.PositiveSmallIntegerField(_("free trial (days)"), default=0)
    trial_once_per_user = models.BooleanField(
        _("free trial once per user"),
        default=True,
        help_text=_("A user who already had a free trial of this service gets none again."),
    )
    renewal_wording = models.TextField(
        _("renewal wording"), help_text=_("The sentence that tells the user it renews.")
    )
    cancellation_method = models.TextField(
        _("how to cancel"), help_text=_("How the user switches auto-renewal off.")
    )
    locale = models.CharField(_("locale"), max_length=16)
    stripe_price_id = models.CharField(_("Stripe price id"), max_length=255, blank=True)
    content_hash = models.CharField(_("content hash (sha256)"), max_length=64, unique=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = RenewalTermsManager()

    immutable_message = _("Renewal terms are immutable; snapshot new terms instead.")
    hash_field = "content_hash"

    class Meta:
        verbose_name = _("renewal terms")
        verbose_name_plural = _("renewal terms")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(amount__gte=0), name="renewals_terms_amount_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(interval_count__gte=1), name="renewals_terms_interval_count"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_name}: {self.price_display}"

    def content(self) -> dict[str, Any]:
        """The hashed content: every field the user is shown, nothing else.

        A field added after the first release is left out while it holds its default, so
        terms snapshotted before it existed keep their hash.
        """
        amount = self.amount if isinstance(self.amount, Decimal) else Decimal(str(self.amount))
        content = {
            **{name: getattr(self, name) for name in HASHED_FIELDS},
            "amount": format(amount.normalize(), "f"),
        }
        if self.trial_once_per_user:
            del content["trial_once_per_user"]
        return content

    @property
    def amount_display(self) -> str:
        return f"{format_amount(Decimal(self.amount), self.currency)} {self.currency}"

    @property
    def price_display(self) -> str:
        """The amount and its term as one phrase in the active language: "25.00 CNY per
        month", "60.00 CNY per 3 months"."""
        count = self.interval_count
        phrases = _PRICE_PER_INTERVAL if count == 1 else _PRICE_PER_INTERVALS
        return phrases[self.interval] % {"amount": self.amount_display, "count": count}
