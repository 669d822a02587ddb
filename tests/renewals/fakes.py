"""Test doubles for the renewals tests: a recording billing gateway, a caller that fails."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, ClassVar

from django.db import transaction
from pytest_django import Settings

from renewals.gateways.base import Period
from renewals.gateways.local import LocalGateway
from renewals.models import Subscription


class RecordingGateway(LocalGateway):
    """A :class:`LocalGateway` that remembers every call, and raises ``failing`` if set."""

    name = "recording"
    calls: ClassVar[list[tuple[Any, ...]]] = []
    failing: ClassVar[Exception | None] = None

    @classmethod
    def install(cls, settings: Settings, **renewals: Any) -> type[RecordingGateway]:
        """Make this class ``RENEWALS["GATEWAY"]`` (with the other ``renewals`` settings),
        with no calls recorded."""
        RecordingGateway.calls = []
        RecordingGateway.failing = None
        backend = f"{cls.__module__}.{cls.__qualname__}"
        settings.RENEWALS = {**renewals, "GATEWAY": {"BACKEND": backend}}
        return cls

    def _record(self, *call: Any) -> None:
        if RecordingGateway.failing is not None:
            raise RecordingGateway.failing
        RecordingGateway.calls.append(call)

    def set_auto_renew(self, subscription: Subscription, enabled: bool) -> None:
        self._record("set_auto_renew", subscription.pk, enabled)

    def hold_renewal(self, subscription: Subscription, renewal_at: dt.datetime) -> None:
        self._record("hold", subscription.pk, renewal_at)

    def release_renewal(self, subscription: Subscription, renewal_at: dt.datetime) -> None:
        self._record("release", subscription.pk, renewal_at)

    def renew(self, subscription: Subscription, renewal_at: dt.datetime) -> Period:
        self._record("renew", subscription.pk, renewal_at)
        return super().renew(subscription, renewal_at)


def rolled_back(work: Callable[[], Any]) -> None:
    """Call ``work()`` in a transaction that is then rolled back, as when the caller fails
    after it."""
    with transaction.atomic():
        work()
        transaction.set_rollback(True)
