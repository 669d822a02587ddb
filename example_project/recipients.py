"""The demo's ``NOTIFICATIONS["RECIPIENT_RESOLVER"]``: the default one, fed from the profile."""

from typing import Any

from notifications import recipients
from notifications.recipients import Recipient


def resolve_recipient(user: Any) -> Recipient:
    """:func:`notifications.recipients.resolve_recipient`, with the phone number, time zone
    and language of the user's :class:`~example_project.models.Profile` (if any)."""
    profile = getattr(user, "profile", None)  # a user without one raises an AttributeError
    if profile is not None:
        # The default resolver reads these attributes of the user.
        user.phone_number = profile.phone_number
        user.time_zone = profile.time_zone
        user.language = profile.language  # empty: settings.LANGUAGE_CODE
    return recipients.resolve_recipient(user)
