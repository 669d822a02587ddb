"""Base classes of the SMS, push and email backends, shaped like Django's mail backends."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured

from ..messages import EmailMessage, PushMessage, SendResult, SMSMessage
from ..phone import mask_numbers

logger = logging.getLogger("notifications.backends")

M = TypeVar("M", SMSMessage, PushMessage, EmailMessage)
ChannelName = Literal["sms", "push", "email"]


class BaseBackend(Generic[M]):
    """A configured alias of a provider.

    Subclasses set the capability flags, list the OPTIONS they accept in ``option_names``
    (``required_options`` among them) and implement :meth:`send_messages`.
    """

    channel: ClassVar[ChannelName]
    #: The provider's name ("aliyun", "fcm"); message templates key provider parameters by it.
    provider: ClassVar[str] = ""
    #: The provider reports delivery receipts (a webhook moves deliveries to a final status).
    supports_receipts: ClassVar[bool] = False
    #: How many messages one provider call may carry.
    batch_size: ClassVar[int] = 1
    #: :meth:`send_messages` may run in another thread than the caller's (it does not use
    #: the caller's database connection), beside other backends' calls.
    thread_safe: ClassVar[bool] = False
    #: The provider's documented send rate per second for one account (``None``: unknown).
    rate_limit_per_second: ClassVar[float | None] = None
    option_names: ClassVar[frozenset[str]] = frozenset()
    required_options: ClassVar[frozenset[str]] = frozenset()
    #: Choices of required OPTIONS: for each entry, one of its alternatives (a group of
    #: names that go together) must be set, e.g. ``((("auth_token",), ("key", "secret")),)``.
    required_one_of: ClassVar[tuple[tuple[tuple[str, ...], ...], ...]] = ()

    def __init__(self, alias: str, **options: Any) -> None:
        self.alias = alias
        unknown = set(options) - self.option_names
        if unknown:
            raise ImproperlyConfigured(
                f"NOTIFICATIONS['BACKENDS'][{alias!r}]['OPTIONS'] has unknown keys "
                f"{sorted(unknown)}; "
                f"{type(self).__name__} accepts {sorted(self.option_names) or 'none'}."
            )
        given = {k for k, v in options.items() if v not in (None, "")}
        missing = self.required_options - given
        if missing:
            raise ImproperlyConfigured(
                f"NOTIFICATIONS['BACKENDS'][{alias!r}]['OPTIONS'] is missing {sorted(missing)}."
            )
        for alternatives in self.required_one_of:
            for group in alternatives:
                half = set(group) & given
                if half and half != set(group):
                    raise ImproperlyConfigured(
                        f"NOTIFICATIONS['BACKENDS'][{alias!r}]['OPTIONS'] sets "
                        f"{sorted(half)} but not {sorted(set(group) - half)}, which go together."
                    )
            if not any(set(group) <= given for group in alternatives):
                wanted = ", or ".join(" and ".join(map(repr, group)) for group in alternatives)
                raise ImproperlyConfigured(
                    f"NOTIFICATIONS['BACKENDS'][{alias!r}]['OPTIONS'] needs {wanted}."
                )
        self.options = options

    @property
    def chunk_size(self) -> int:
        """How many messages dispatch hands to one :meth:`send_messages` call."""
        return self.batch_size

    def open(self) -> None:
        """Open any connection the backend keeps between messages."""

    def close(self) -> None:
        """Close what :meth:`open` opened."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send_messages(self, messages: Sequence[M]) -> list[SendResult]:
        """Send the messages; return one result per message, in order."""
        raise NotImplementedError

    def check(self) -> list[CheckMessage]:
        """Configuration problems of this alias, reported by the app's system check."""
        return []


class SMSBackend(BaseBackend[SMSMessage]):
    channel = "sms"

    def template_code_for(self, template_key: str) -> str | None:
        """The provider's code for a message template, where the provider sends only
        pre-approved templates (Aliyun, Tencent); ``None`` where it sends any text."""
        return None


class PushBackend(BaseBackend[PushMessage]):
    channel = "push"


class EmailBackend(BaseBackend[EmailMessage]):
    channel = "email"


def raised(alias: str, messages: int, exc: Exception) -> SendResult:
    """The retry result for ``messages`` messages of a backend call that raised ``exc``,
    which is logged with its traceback (numbers masked): they stay queued."""
    logger.error(
        "Backend %r raised; %d message(s) stay queued.\n%s",
        alias,
        messages,
        mask_numbers("".join(traceback.format_exception(exc))),
    )
    return SendResult.retry("backend_exception", f"{type(exc).__name__}: {exc}")
