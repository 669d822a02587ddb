"""What the HTTP provider backends share: lazy optional imports, an httpx client, the send
loop, error tables and a cache of short-lived credentials.

Every HTTP backend accepts these OPTIONS besides its own: ``timeout`` (seconds, default 10),
``concurrency`` (provider calls in flight at once, default 10), ``rate_limit`` (messages per
second this process sends through the alias, default the provider's documented rate or none)
and ``transport`` (tests only: an ``httpx.BaseTransport`` such as ``httpx.MockTransport``, so
the real request-building code runs without a network).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar

from ..app_settings import item, positive_int, positive_number
from ..exceptions import BackendError, InvalidRecipient, MessageError, MissingExtra
from ..messages import SendResult
from .base import BaseBackend, M, raised

if TYPE_CHECKING:
    import httpx

HTTP_OPTIONS = frozenset({"timeout", "transport", "concurrency", "rate_limit"})


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


class RateLimiter:
    """Spaces calls so that at most ``rate`` messages a second go out, across threads."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self, messages: int = 1) -> None:
        """Wait until ``messages`` more may be sent."""
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + messages * self.interval
        if start > now:
            time.sleep(start - now)


_limiters: dict[tuple[str, float], RateLimiter] = {}
_limiters_lock = threading.Lock()  # guards the limiters and the pools


def rate_limiter(alias: str, rate: float) -> RateLimiter:
    """The process's one limiter of ``alias`` at ``rate``, shared by every instance."""
    with _limiters_lock:
        return _limiters.setdefault((alias, rate), RateLimiter(rate))


_pools: dict[tuple[str, int], ThreadPoolExecutor] = {}


def thread_pool(alias: str, workers: int) -> ThreadPoolExecutor:
    """The process's pool of ``workers`` threads for ``alias``'s concurrent provider calls,
    kept between calls (starting threads for every batch costs more than the calls)."""
    with _limiters_lock:
        pool = _pools.get((alias, workers))
        if pool is None:
            pool = _pools[alias, workers] = ThreadPoolExecutor(workers, f"notifications-{alias}")
        return pool


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
    thread_safe = True
    #: Other optional modules the backend needs (``jwt``, ``h2``), checked at construction.
    requires: ClassVar[tuple[str, ...]] = ()

    def __init__(self, alias: str, **options: Any) -> None:
        super().__init__(alias, **options)
        for module in ("httpx", *self.requires):
            require(module, self.provider, self.extra)
        self._client: httpx.Client | None = None
        options_name = f"NOTIFICATIONS['BACKENDS'][{alias!r}]['OPTIONS']"
        self.concurrency = positive_int(
            item(options_name, "concurrency"), options.get("concurrency", 10)
        )
        rate = options.get("rate_limit", self.rate_limit_per_second)
        self.limiter = (
            None
            if rate is None
            else rate_limiter(alias, positive_number(item(options_name, "rate_limit"), rate))
        )

    @property
    def chunk_size(self) -> int:
        """Enough messages for every concurrent call to carry a full batch."""
        return self.batch_size * self.concurrency

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
        """Send every batch, up to ``concurrency`` provider calls at once."""
        opened_here = self._client is None
        self.open()
        try:
            batches = list(self.batches(messages))
            if self.concurrency == 1 or len(batches) == 1:
                return self._send_in_order(batches)
            broken = threading.Event()
            pool = thread_pool(self.alias, self.concurrency)
            outcomes = list(pool.map(lambda batch: self._send_guarded(batch, broken), batches))
        finally:
            if opened_here:
                self.close()
        failures = [outcome for outcome in outcomes if isinstance(outcome, BackendError)]
        if len(failures) == len(batches):
            raise failures[0]
        return [
            result
            for batch, outcome in zip(batches, outcomes, strict=True)
            for result in (
                [SendResult.retry("backend_error", str(outcome))] * len(batch)
                if isinstance(outcome, BackendError)
                else outcome
            )
        ]

    def _send_in_order(self, batches: list[Sequence[M]]) -> list[SendResult]:
        """One call after another; a :class:`BackendError` before any message went out
        propagates, after some did it makes the rest retries."""
        results: list[SendResult] = []
        for index, batch in enumerate(batches):
            try:
                results += self._attempt(batch)
            except BackendError as exc:
                if not results:
                    raise
                rest = sum(len(later) for later in batches[index:])
                results += [SendResult.retry("backend_error", str(exc))] * rest
                break
        return results

    def _send_guarded(
        self, batch: Sequence[M], broken: threading.Event
    ) -> list[SendResult] | BackendError:
        """One concurrent call: its results, or the :class:`BackendError` it raised (after
        which the calls not yet started are not made: ``broken``); any other exception makes
        its messages retries, the others' results stand."""
        if broken.is_set():
            return BackendError("not sent: the backend failed on another call")
        try:
            return self._attempt(batch)
        except BackendError as exc:
            broken.set()
            return exc
        except Exception as exc:
            return [raised(self.alias, len(batch), exc)] * len(batch)

    def _attempt(self, batch: Sequence[M]) -> list[SendResult]:
        """One provider call (after the rate limiter allows it), its usual failures turned
        into results."""
        import httpx

        if self.limiter is not None:
            self.limiter.acquire(len(batch))
        try:
            return self.send_batch(batch)
        except (InvalidRecipient, MessageError) as exc:
            return [SendResult.permanent_failure(type(exc).__name__, str(exc))] * len(batch)
        except httpx.TransportError as exc:
            return [SendResult.retry("network_error", str(exc))] * len(batch)

    def batches(self, messages: Sequence[M]) -> Iterator[Sequence[M]]:
        """The provider calls to make, in order; one message each unless overridden."""
        for message in messages:
            yield (message,)

    def send_batch(self, batch: Sequence[M]) -> list[SendResult]:
        (message,) = batch
        return [self.send_one(message)]

    def send_one(self, message: M) -> SendResult:
        raise NotImplementedError
