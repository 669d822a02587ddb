"""What the HTTP provider backends share: lazy optional imports, an httpx client, the send
loop, error tables and a cache of short-lived credentials.

Every HTTP backend accepts two OPTIONS besides its own: ``timeout`` (seconds, default 10) and
``transport`` (tests only: an ``httpx.BaseTransport`` such as ``httpx.MockTransport``, so the
real request-building code runs without a network).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from ..exceptions import BackendError, InvalidRecipient, MessageError, MissingExtra
from ..messages import SendResult
from .base import BaseBackend, M

if TYPE_CHECKING:
    import httpx

HTTP_OPTIONS = frozenset({"timeout", "transport"})


def require(module: str, backend: str, extra: str) -> ModuleType:
    """Import an optional dependency, or raise :class:`MissingExtra` naming the pip extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(backend, extra) from exc


def is_transient(status_code: int) -> bool:
    """HTTP statuses after which the same request may succeed later."""
    return status_code == 429 or status_code >= 500


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or ``{}`` (a proxy's HTML error page, an empty body)."""
    try:
        return json_object(response.json())
    except ValueError:
        return {}


def json_object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}``: a reply of another shape reads as empty."""
    return value if isinstance(value, dict) else {}


def accepted(message_id: Any, field: str) -> SendResult:
    """The result of a success reply carrying the provider's message id in ``field``; see
    :func:`malformed_reply` for one without it."""
    if isinstance(message_id, str | int) and str(message_id):
        return SendResult.sent(str(message_id))
    return malformed_reply(field)


def malformed_reply(field: str) -> SendResult:
    """The result of a success reply without ``field``: the provider accepted the message, so
    it counts as sent (retrying would send it twice), with code ``malformed_reply``; with no
    id, no receipt can find it."""
    return SendResult(
        ok=True,
        error_code="malformed_reply",
        error_message=f"The provider's success reply has no {field}.",
    )


@dataclass(frozen=True)
class ErrorTable:
    """A provider's error codes sorted by what the caller should do; unlisted is permanent."""

    retry: frozenset[str] = frozenset()
    retry_prefixes: tuple[str, ...] = ()
    #: The account or configuration is broken: every message would fail the same way.
    backend: frozenset[str] = frozenset()
    backend_prefixes: tuple[str, ...] = ()
    #: The push token is not registered any more: its device is deactivated.
    token_invalid: frozenset[str] = frozenset()

    def result(self, code: str, message: str = "", *, transient: bool = False) -> SendResult:
        """The result of one failed message; raises :class:`BackendError` for backend codes."""
        if code in self.backend or code.startswith(self.backend_prefixes):
            raise BackendError(f"{code}: {message}" if message else code)
        if transient or code in self.retry or code.startswith(self.retry_prefixes):
            return SendResult.retry(code, message)
        return SendResult.permanent_failure(code, message, token_invalid=code in self.token_invalid)


class TokenCache:
    """Short-lived credentials (OAuth2 access tokens, provider JWTs) shared by every instance
    of a backend, per credential, until shortly before they expire."""

    def __init__(self) -> None:
        self._tokens: dict[Hashable, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, fetch: Callable[[], tuple[str, float]]) -> str:
        """The cached token of ``key``; ``fetch`` returns a new one and its expiry (epoch)."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached is None or cached[1] <= time.time():
                cached = self._tokens[key] = fetch()
            return cached[0]

    def invalidate(self, key: Hashable) -> None:
        """Forget ``key``'s token (the provider rejected it); the next :meth:`get` fetches."""
        with self._lock:
            self._tokens.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


class HTTPBackend(BaseBackend[M]):
    """A provider reached over HTTPS with httpx.

    Subclasses name their ``provider`` and its pip ``extra``, build and interpret one request in
    :meth:`send_one` (or a batch in :meth:`send_batch`, with :meth:`batches`). This class
    turns the usual failures into results: a network error is retried, an invalid recipient
    or message fails permanently, and a :class:`BackendError` propagates unless some messages
    already went out (then the rest are marked for retry, so nothing is sent twice).
    """

    extra: ClassVar[str]
    http2: ClassVar[bool] = False
    #: Other optional modules the backend needs (``jwt``, ``h2``), checked at construction.
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)
        for module in ("httpx", *self.requires):
            require(module, self.provider, self.extra)
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            raise BackendError(f"{type(self).__name__} is not open.")
        return self._client

    def open(self) -> None:
        import httpx

        if self._client is None:
            self._client = httpx.Client(
                transport=self.options.get("transport"),
                timeout=self.options.get("timeout", 10.0),
                http2=self.http2,
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def send_messages(self, messages: Sequence[M]) -> list[SendResult]:
        import httpx

        opened_here = self._client is None
        self.open()
        results: list[SendResult] = []
        try:
            for batch in self.batches(messages):
                try:
                    results += self.send_batch(batch)
                except (InvalidRecipient, MessageError) as exc:
                    results += [SendResult.permanent_failure(type(exc).__name__, str(exc))] * len(
                        batch
                    )
                except httpx.TransportError as exc:
                    results += [SendResult.retry("network_error", str(exc))] * len(batch)
                except BackendError as exc:
                    if not results:
                        raise
                    rest = len(messages) - len(results)
                    results += [SendResult.retry("backend_error", str(exc))] * rest
                    break
        finally:
            if opened_here:
                self.close()
        return results

    def batches(self, messages: Sequence[M]) -> Iterator[Sequence[M]]:
        """The provider calls to make, in order; one message each unless overridden."""
        for message in messages:
            yield (message,)

    def send_batch(self, batch: Sequence[M]) -> list[SendResult]:
        (message,) = batch
        return [self.send_one(message)]

    def send_one(self, message: M) -> SendResult:
        raise NotImplementedError
