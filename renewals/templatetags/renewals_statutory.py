"""``{% statutory_button "de" %}``: a rule pack's statutory start button, for every page.

BGB § 312k wants the cancellation button reachable at all times; put the tag in the footer of
the site's base template. It links straight to the confirmation page, labelled as the pack says.
"""

from __future__ import annotations

from django import template
from django.urls import reverse

from ..policies import get_pack
from ..views.statutory import ROUTES, labels

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
