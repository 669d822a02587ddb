"""Who a message goes to: a :class:`Recipient`, and the default way to build one from a user."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

from .app_settings import imported
from .conf import notifications_settings
from .email_address import normalize_email
from .exceptions import InvalidRecipient
from .models import Device
from .phone import masked_repr, normalize
from .types import User


@dataclass
class Recipient:
    """A person to notify: ``phone`` in E.164 (or ``None``), their active push devices, the
    locale to render in, the zone in which quiet hours are counted, and ``email`` (or
    ``None``; left out of ``repr()``)."""

    user: User | None = None
    phone: str | None = None
    devices: list[Device] = field(default_factory=list)
    locale: str = ""
    time_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo(settings.TIME_ZONE or "UTC"))
    email: str | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """A stable, non-reversible name of the person, used to count them for the rate limit."""
        if self.user is not None:
            return f"user:{self.user.pk}"
        kind, address = ("phone", self.phone) if self.phone else ("email", self.email)
        if not address:
            raise InvalidRecipient("A Recipient needs a user, a phone number or an email address.")
        digest = hmac.new(settings.SECRET_KEY.encode(), address.encode(), hashlib.sha256)
        return f"{kind}:{digest.hexdigest()[:64]}"

    def __repr__(self) -> str:
        return masked_repr(self, "phone")


def _user_phone(user: User) -> str | None:
    if hasattr(user, "get_notification_phone"):
        attribute, number = "get_notification_phone()", user.get_notification_phone()
    else:
        attribute, number = "phone_number", getattr(user, "phone_number", None)
    if not number:
        return None
    try:
        return normalize(str(number))
    except InvalidRecipient as exc:
        raise InvalidRecipient(f"user {user.pk}: user.{attribute}: {exc}") from None


def _user_email(user: User) -> str | None:
    if hasattr(user, "get_notification_email"):
        attribute, address = "get_notification_email()", user.get_notification_email()
    else:
        attribute = user.get_email_field_name()
        address = getattr(user, attribute, None)
    if not address:
        return None
    try:
        return normalize_email(str(address))
    except InvalidRecipient as exc:
        raise InvalidRecipient(f"user {user.pk}: user.{attribute}: {exc}") from None


def _user_zone(user: User) -> ZoneInfo:
    zone = getattr(user, "time_zone", None) or settings.TIME_ZONE or "UTC"
    if isinstance(zone, ZoneInfo):
        return zone
    try:
        return ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRecipient(
            f"user {user.pk}: user.time_zone {zone!r} is not an IANA time zone name."
        ) from None


def resolve_recipient(user: User) -> Recipient:
    """The default ``RECIPIENT_RESOLVER``; reads these attributes of ``user``, all optional:

    - ``get_notification_phone()`` or else ``phone_number``: a number, E.164 or national in
      ``DEFAULT_REGION``;
    - ``get_notification_email()`` or else the user model's email field (``email``);
    - ``locale`` or else ``language`` (default ``settings.LANGUAGE_CODE``);
    - ``time_zone``: an IANA name or ``ZoneInfo`` (default ``settings.TIME_ZONE``);

    and the user's active :class:`~notifications.models.Device` rows (prefetch
    ``notification_devices`` to resolve many users without a query each). Raises
    :class:`~notifications.exceptions.InvalidRecipient` naming the attribute at fault, or when
    the user has no phone number, no email address and no active device.
    """
    phone = _user_phone(user)
    email = _user_email(user)
    # all() reads the devices a caller prefetched (the renewals sweep does), else queries.
    devices = sorted(
        (device for device in user.notification_devices.all() if device.active),
        key=lambda device: device.pk,
    )
    if phone is None and email is None and not devices:
        raise InvalidRecipient(
            f"user {user.pk} cannot be reached: no phone number (set user.phone_number or define "
            "user.get_notification_phone()), no email address and no active Device."
        )
    locale = getattr(user, "locale", None) or getattr(user, "language", None)
    return Recipient(
        user=user,
        phone=phone,
        devices=devices,
        locale=str(locale or settings.LANGUAGE_CODE),
        time_zone=_user_zone(user),
        email=email,
    )


def get_resolver() -> Callable[[User], Recipient]:
    """The callable named by ``NOTIFICATIONS['RECIPIENT_RESOLVER']``."""
    resolver: Callable[[User], Recipient] = imported(
        "NOTIFICATIONS['RECIPIENT_RESOLVER']", notifications_settings.RECIPIENT_RESOLVER
    )
    return resolver
