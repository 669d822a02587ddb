"""Who is calling: the host project's ``RENEWALS["API_AUTHENTICATION"]`` hook, and CSRF.

The hook is a callable ``(request) -> user | None``. It may raise
:class:`~django.core.exceptions.PermissionDenied` to refuse a user it identified (403); ``None``
is 401. If it has a ``www_authenticate`` attribute, 401 answers carry it as the
``WWW-Authenticate`` header.

CSRF: a browser sends its session cookie with any request, also one another site makes it
send, so a request the session could have authenticated must pass Django's CSRF check
(:class:`~django.middleware.csrf.CsrfViewMiddleware`'s rules) before it may change anything.
That is the case when the hook's user is the user of the request's session
(``request.user``, from ``AuthenticationMiddleware``). A request authenticated by something a
browser does not send on its own, such as a token in the ``Authorization`` header of an app
without a session, cannot be forged that way, and is not checked.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.utils.translation import gettext as _

from notifications.app_settings import imported

from ..conf import renewals_settings
from ..types import User
from .errors import ApiError, ErrorCode

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def session_user(request: HttpRequest) -> User | None:
    """The default hook: the user of the request's session, if one is logged in."""
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def authenticate(request: HttpRequest) -> User:
    """The user the hook names, allowed to use the API; else the :class:`ApiError` to answer."""
    hook: Callable[[HttpRequest], User | None] = imported(
        "RENEWALS['API_AUTHENTICATION']", renewals_settings.API_AUTHENTICATION
    )
    try:
        user = hook(request)
    except PermissionDenied:
        raise _forbidden() from None
    if user is None:
        challenge = getattr(hook, "www_authenticate", None)
        raise ApiError(
            401,
            ErrorCode.NOT_AUTHENTICATED,
            _("Authentication credentials were not provided or are not valid."),
            headers={"WWW-Authenticate": challenge} if challenge else None,
        )
    if not user.is_active:
        raise _forbidden()
    if _session_could_authenticate(request, user):
        if request.method in SAFE_METHODS:
            get_token(request)  # the client reads the csrftoken cookie for its next POST
        else:
            _check_csrf(request)
    return user


def _forbidden() -> ApiError:
    return ApiError(403, ErrorCode.PERMISSION_DENIED, _("You may not use this API."))


def _session_could_authenticate(request: HttpRequest, user: User) -> bool:
    session_user = getattr(request, "user", None)
    return bool(
        session_user is not None and session_user.is_authenticated and session_user.pk == user.pk
    )


def _check_csrf(request: HttpRequest) -> None:
    """Django's CSRF check, as the middleware makes it for a view that is not exempt."""
    check = CsrfViewMiddleware(_unused_response)
    check.process_request(request)  # reads the cookie, in case the middleware is not installed
    if check.process_view(request, None, (), {}) is not None:  # type: ignore[arg-type]
        raise ApiError(
            403,
            ErrorCode.CSRF_FAILED,
            _(
                "CSRF verification failed. Send the csrftoken cookie's value in the "
                "X-CSRFToken header."
            ),
        )


def _unused_response(request: HttpRequest) -> HttpResponse:
    raise AssertionError("The CSRF check is only asked about the view, never to respond.")
