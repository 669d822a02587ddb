"""``{% statutory_button "de" %}``: a rule pack's statutory start button, for every page.

BGB § 312k wants the cancellation button reachable at all times; put the tag in the footer of
the site's base template. It links straight to the confirmation page, labelled as the pack says.

``{% contract_link subscription as link %}``: the link into the statutory flow for one of the
user's contracts, for a manage page (``link.label``, ``link.url``; empty when there is none).
"""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils import timezone

from ..models import Subscription
from ..policies import get_pack
from ..views.statutory import ROUTES, ContractLink, contract_link, labels

register = template.Library()


@register.inclusion_tag("renewals/statutory/button.html")
def statutory_button(policy: str) -> dict[str, str]:
    """The start button of the statutory flow of rule pack ``policy``; raises
    :class:`ValueError` if the pack has none (a one-click pack)."""
    pack = get_pack(policy)
    route = ROUTES.get(pack.cancellation.flow)
    if route is None:
        raise ValueError(
            f"Rule pack {policy!r} has no statutory flow: its cancellation is one click."
        )
    return {
        "url": reverse(f"renewals:{route.name}_confirm", args=[policy]),
        "label": labels(pack, route)["start"],
    }


@register.simple_tag(name="contract_link")
def contract_link_now(subscription: Subscription) -> ContractLink | None:
    """:func:`renewals.views.statutory.contract_link` of ``subscription`` now."""
    return contract_link(subscription, timezone.now())
