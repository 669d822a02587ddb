"""Authentication hooks for ``RENEWALS["API_AUTHENTICATION"]``, as a host project might write
them: a bearer token for the apps, the session for the site's own pages."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from renewals.api.auth import session_user
from renewals.types import User

_SALT = "tests.api-token"


def token_for(user: User) -> str:
    return signing.dumps(user.pk, salt=_SALT)


class BearerToken:
    """``Authorization: Bearer <token>``; a token signed for the user's pk (a real project
    would look it up in its own token table, so it can be revoked)."""

    www_authenticate = 'Bearer realm="api"'

    def __call__(self, request: HttpRequest) -> User | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            pk = signing.loads(token, salt=_SALT)
        except signing.BadSignature:
            return None
        return get_user_model()._default_manager.filter(pk=pk).first()


bearer_token = BearerToken()


def token_or_session(request: HttpRequest) -> User | None:
    """The token when the request carries one, else the session."""
    if "Authorization" in request.headers:
        return bearer_token(request)
    return session_user(request)


def staff_only(request: HttpRequest) -> User | None:
    """The session's user, refused (403) unless staff: a hook may refuse whom it knows."""
    user = session_user(request)
    if user is not None and not user.is_staff:
        raise PermissionDenied
    return user
