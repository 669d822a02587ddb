"""Who a message goes to: a :class:`Recipient`, and the default way to build one from a user."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings

from .app_settings import imported
from .conf import notifications_settings
from .exceptions import InvalidRecipient
from .models import Device
from .phone import normalize


@dataclass
class Recipient:
    """A person to notify: ``phone`` in E.164 (or ``None``), their active push devices, the
    locale to render in and the zone in which quiet hours are counted."""

    user: Any = None
    phone: str | None = None
    devices: list[Device] = field(default_factory=list)
    locale: str = ""
    time_zone: ZoneInfo = field(default_factory=lambda: ZoneInfo(settings.TIME_ZONE or "UTC"))

    @property
    def key(self) -> str:
        """A stable, non-reversible name of the person, used to count them for the rate limit."""
        if self.user is not None:
            return f"user:{self.user.pk}"
        if not self.phone:
            raise InvalidRecipient("A Recipient needs a user or a phone number.")
        digest = hmac.new(settings.SECRET_KEY.encode(), self.phone.encode(), hashlib.sha256)
        return f"phone:{digest.hexdigest()[:64]}"


def _user_phone(user: Any) -> str | None:
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


def _user_zone(user: Any) -> ZoneInfo:
    zone = getattr(user, "time_zone", None) or settings.TIME_ZONE or "UTC"
    if isinstance(zone, ZoneInfo):
        return zone
    try:
        return ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRecipient(
            f"user {user.pk}: user.time_zone {zone!r} is not an IANA time zone name."
        ) from None


def resolve_recipient(user: Any) -> Recipient:
    """The default ``RECIPIENT_RESOLVER``; reads these attributes of ``user``, all optional:

    - ``get_notification_phone()`` or else ``phone_number``: a number, E.164 or national in
      ``DEFAULT_REGION``;
    - ``locale`` or else ``language`` (default ``settings.LANGUAGE_CODE``);
    - ``time_zone``: an IANA name or ``ZoneInfo`` (default ``settings.TIME_ZONE``);

    and the user's active :class:`~notifications.models.Device` rows (prefetch
    ``notification_devices`` to resolve many users without a query each). Raises
    :class:`~notifications.exceptions.InvalidRecipient` naming the attribute at fault, or when
    the user has neither a phone number nor an active device.
    """
    phone = _user_phone(user)
    # all() reads the devices a caller prefetched (the renewals sweep does), else queries.
    devices = sorted(
        (device for device in user.notification_devices.all() if device.active),
        key=lambda device: device.pk,
    )
    if phone is None and not devices:
        raise InvalidRecipient(
            f"user {user.pk} cannot be reached: no phone number (set user.phone_number or define "
            "user.get_notification_phone()) and no active Device."
        )
    locale = getattr(user, "locale", None) or getattr(user, "language", None)
    return Recipient(
        user=user,
        phone=phone,
        devices=devices,
        locale=str(locale or settings.LANGUAGE_CODE),
        time_zone=_user_zone(user),
    )


def get_resolver() -> Callable[[Any], Recipient]:
    """The callable named by ``NOTIFICATIONS['RECIPIENT_RESOLVER']``."""
    resolver: Callable[[Any], Recipient] = imported(
        "NOTIFICATIONS['RECIPIENT_RESOLVER']", notifications_settings.RECIPIENT_RESOLVER
    )
    return resolver
