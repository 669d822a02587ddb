"""The exceptions of the ``notifications`` app, in one tree."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation


class NotificationsError(Exception):
    """Base class of every error this app raises on purpose."""


class InvalidRecipient(NotificationsError):
    """A phone number, device or user cannot receive the message (says what is missing)."""


class MessageError(NotificationsError):
    """A message does not fit its template or channel (missing field, too many segments)."""


class BackendError(NotificationsError):
    """A backend failed as a whole (network down, bad credentials), not one message."""


class MissingExtra(ImproperlyConfigured):
    """A backend needs an optional dependency that is not installed."""

    def __init__(self, backend: str, extra: str) -> None:
        self.extra = extra
        super().__init__(
            f"The {backend} backend needs an optional dependency: "
            f"pip install 'django-renewals[{extra}]'"
        )


class InvalidSignature(SuspiciousOperation):
    """A provider callback whose signature does not verify (Django answers 400)."""
