"""The demo's ``NOTIFICATIONS["RECIPIENT_RESOLVER"]``: the default one, fed from the profile."""

from notifications import recipients
from notifications.recipients import Recipient
from notifications.types import User

from .models import Profile


def resolve_recipient(user: User) -> Recipient:
    """:func:`notifications.recipients.resolve_recipient`, with the phone number, time zone
    and language of the user's :class:`~example_project.models.Profile` (if any)."""
    # A user without one raises an AttributeError.
    profile: Profile | None = getattr(user, "profile", None)
    if profile is not None:
        # The default resolver reads these attributes of the user, which auth.User lacks.
        vars(user).update(
            phone_number=profile.phone_number,
            time_zone=profile.time_zone,
            language=profile.language,  # empty: settings.LANGUAGE_CODE
        )
    return recipients.resolve_recipient(user)
