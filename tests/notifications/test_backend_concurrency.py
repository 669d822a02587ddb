"""HTTP backends make up to ``concurrency`` provider calls at once, never faster than their
``rate_limit``, and one failing call does not cost the others their results."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured

from notifications.backends import _http
from notifications.backends.twilio import TwilioSMSBackend
from notifications.exceptions import BackendError
from notifications.messages import SendResult, SMSMessage

from .providers import form

SID = "AC0123456789abcdef0123456789abcdef"


class Provider:
    """Answers each message with a sid made from its number, after ``delay`` seconds,
    counting how many calls are in flight at once."""

    def __init__(self, delay: float = 0.02, fail: dict[str, httpx.Response] | None = None):
        self.delay = delay
        self.fail = fail or {}
        self.in_flight = self.most_in_flight = self.calls = 0
        self.lock = threading.Lock()
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        to = form(request)["To"]
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        if to in self.fail:
            return self.fail[to]
        return httpx.Response(201, json={"sid": f"SM{to[-4:]}", "status": "queued"})


def twilio(provider: Provider, **options: object) -> TwilioSMSBackend:
    return TwilioSMSBackend(
        "tw",
        account_sid=SID,
        auth_token="tok",
        from_number="+15005550006",
        transport=provider.transport,
        **options,
    )


def numbers(count: int) -> list[SMSMessage]:
    return [SMSMessage(to=f"+1415555{i:04d}", body="x") for i in range(count)]


def test_calls_run_concurrently_up_to_the_bound_and_results_keep_their_order() -> None:
    provider = Provider()
    backend = twilio(provider, concurrency=4)
    assert backend.chunk_size == 4
    results = backend.send_messages(numbers(12))
    assert provider.most_in_flight == 4
    assert [r.provider_message_id for r in results] == [f"SM{i:04d}" for i in range(12)]


def test_one_call_at_a_time_when_concurrency_is_one() -> None:
    provider = Provider()
    twilio(provider, concurrency=1).send_messages(numbers(5))
    assert provider.most_in_flight == 1


def test_a_failing_call_leaves_the_others_results_standing() -> None:
    provider = Provider(fail={"+14155550003": httpx.Response(400, json={"code": 21211})})
    results = twilio(provider, concurrency=3).send_messages(numbers(6))
    assert [r.ok for r in results] == [True, True, True, False, True, True]
    assert results[3].permanent


def test_a_backend_error_makes_its_messages_and_those_not_yet_sent_retries() -> None:
    auth_failed = httpx.Response(401, json={"code": 20003, "message": "Authenticate"})
    provider = Provider(fail={"+14155550000": auth_failed})
    results = twilio(provider, concurrency=2).send_messages(numbers(6))
    assert not results[0].ok
    assert results[0].error_code == "backend_error"
    assert not any(r.permanent for r in results)
    # Calls already started finish; once the error is known no new call starts.
    assert provider.calls < 6
    assert sum(r.ok for r in results) == provider.calls - 1


def test_a_backend_error_on_every_call_is_raised() -> None:
    auth_failed = httpx.Response(401, json={"code": 20003, "message": "Authenticate"})
    provider = Provider(fail={m.to: auth_failed for m in numbers(2)})
    with pytest.raises(BackendError, match="credentials"):
        twilio(provider, concurrency=2).send_messages(numbers(2))


def test_an_unexpected_exception_in_one_call_makes_only_its_messages_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = twilio(Provider(), concurrency=3)
    send_one = backend.send_one

    def flaky(message: SMSMessage) -> SendResult:
        if message.to.endswith("0001"):
            raise RuntimeError("bug")
        return send_one(message)

    monkeypatch.setattr(backend, "send_one", flaky)
    results = backend.send_messages(numbers(3))
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error_code == "backend_exception"


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def test_the_rate_limit_spaces_calls_across_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(time, "monotonic", clock.monotonic)
    monkeypatch.setattr(time, "sleep", clock.sleep)
    limiter = _http.RateLimiter(rate=10)
    starts = []

    def call() -> None:
        limiter.acquire()
        starts.append(clock.monotonic())

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Five messages at 10 a second take 0.4 s between the first and the last.
    assert clock.now - 100.0 == pytest.approx(0.4)


def test_a_backend_uses_one_limiter_per_alias_and_rate() -> None:
    first = twilio(Provider(), rate_limit=5)
    second = twilio(Provider(), rate_limit=5)
    assert first.limiter is second.limiter
    assert first.limiter is not None
    assert first.limiter.interval == pytest.approx(0.2)
    assert twilio(Provider()).limiter is None  # Twilio documents no account-wide rate


@pytest.mark.parametrize(("name", "value"), [("concurrency", 0), ("rate_limit", "fast")])
def test_bad_concurrency_options_are_refused(name: str, value: int | str) -> None:
    with pytest.raises(ImproperlyConfigured, match=f"'{name}'"):
        twilio(Provider(), **{name: value})
