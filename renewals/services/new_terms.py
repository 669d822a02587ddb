"""New terms, a new price say, charged from a subscription's next renewal on."""

from __future__ import annotations

from django.db import transaction

from ..exceptions import IllegalTransition
from ..models import RenewalTerms, Subscription
from ..types import Actor
from .audit import record_event
from .scheduling import plan_notices


def schedule_new_terms(
    subscription: Subscription, terms: RenewalTerms, *, actor: Actor = None
) -> Subscription:
    """Charge ``terms`` from the subscription's next renewal on, and return it.

    Sets them as its upcoming terms (its current terms again: none), records the change, and
    plans at once the notices its rule pack requires for the change, such as the notice of a
    new price or the request for consent to it (:func:`~renewals.services.record_consent`
    takes that consent; the manage page asks for it). The renewal gate holds a renewal whose
    notices, or whose required consent, are missing. Idempotent: the same terms again change
    nothing. Raises :class:`~renewals.exceptions.IllegalTransition` for an ended subscription.
    """
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if not subscription.is_live:
            raise IllegalTransition(subscription.status, "new terms")
        upcoming = None if terms.pk == subscription.terms_id else terms
        if subscription.upcoming_terms_id == (upcoming.pk if upcoming else None):
            return subscription
        previous = subscription.renewal_terms()
        subscription.upcoming_terms = upcoming
        subscription.save(update_fields=["upcoming_terms", "updated_at"])
        record_event(
            "new_terms_scheduled",
            subscription=subscription,
            actor=actor,
            data={
                "terms": terms.pk,
                "terms_hash": terms.content_hash,
                "amount": terms.amount,
                "currency": terms.currency,
                "replaces_terms_hash": previous.content_hash,
                "from_renewal_at": subscription.next_renewal_at,
            },
        )
        plan_notices(subscription)
    return subscription
