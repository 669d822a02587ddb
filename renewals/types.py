"""The types of who acts on a subscription, for annotations."""

from __future__ import annotations

from typing import TypeAlias

from django.http import HttpRequest

from notifications.types import User

#: Who an audit event records as acting: a user, a label naming what acted for no user
#: (``"stripe:webhook"``, ``"link:notice:7"``), or ``None`` for the system.
Actor: TypeAlias = User | str | None


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a view only a signed-in user reaches (``login_required``, the admin):
    its ``user`` is a :data:`~notifications.types.User`."""

    user: User


__all__ = ["Actor", "AuthenticatedHttpRequest", "User"]
