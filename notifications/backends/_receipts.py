"""Delivery receipts: the hooks the webhook view calls, and the shared token-protected JSON
push used by the Chinese SMS providers."""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from django.core.checks import CheckMessage
from django.core.checks import Warning as CheckWarning
from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_variables

from ..exceptions import InvalidSignature
from ..messages import Receipt

#: Aliyun and Tencent report local times of mainland China (UTC+8, no daylight saving).
CHINA_TIME = dt.timezone(dt.timedelta(hours=8))


@runtime_checkable
class ReceiptHandler(Protocol):
    """What the receipt webhook view needs of a backend (any backend may provide it)."""

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]: ...

    def receipt_response(self, receipts: list[Receipt]) -> HttpResponse: ...


class ReceiptsMixin:
    """What a backend with ``supports_receipts`` offers the receipt webhook view."""

    supports_receipts: ClassVar[bool] = True
    alias: str
    options: dict[str, Any]

    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        """The receipts in a verified callback.

        Raises :class:`~notifications.exceptions.InvalidSignature` for a forged request and
        :class:`~django.core.exceptions.BadRequest` for a malformed one (both answered 400).
        """
        raise NotImplementedError

    def receipt_response(self, receipts: list[Receipt]) -> HttpResponse:
        """The acknowledgement the provider expects."""
        return HttpResponse(status=204)


def parse_china_time(value: str | None) -> dt.datetime | None:
    """``"2024-05-01 12:00:00"`` in mainland China time, aware (``None`` when empty)."""
    if not value:
        return None
    return dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TIME)


class TokenJSONReceipts(ReceiptsMixin):
    """A provider that pushes a JSON array of reports and signs nothing.

    The endpoint is protected by a shared secret: OPTION ``receipt_token``, which a request
    carries in the header ``X-Receipt-Token`` (added by a proxy in front) or else as
    ``?token=…`` in the URL configured at the provider; it is compared in constant time and a
    request without it is refused as forged. Without the OPTION every receipt is refused.
    """

    receipt_ack: ClassVar[dict[str, Any]]

    @method_decorator(sensitive_variables("expected", "given"))  # kept out of error reports
    def parse_receipts(self, request: HttpRequest) -> list[Receipt]:
        expected = self.options.get("receipt_token") or ""
        given = request.headers.get("X-Receipt-Token") or request.GET.get("token", "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise InvalidSignature(f"Receipt for {self.alias!r} without its receipt_token.")
        try:
            items = json.loads(request.body)
            if not isinstance(items, list):
                raise TypeError("not a JSON array")
            return [self.receipt_from_item(item) for item in items]
        except RecursionError:  # nested deeper than the parser goes
            raise BadRequest(f"Malformed receipt for {self.alias!r}: nested too deep.") from None
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BadRequest(f"Malformed receipt for {self.alias!r}: {exc}") from exc

    def receipt_response(self, receipts: list[Receipt]) -> HttpResponse:
        return JsonResponse(self.receipt_ack, json_dumps_params={"ensure_ascii": False})

    def receipt_from_item(self, item: Mapping[str, Any]) -> Receipt:
        """One report of the array (``KeyError``/``ValueError`` when malformed)."""
        raise NotImplementedError

    @staticmethod
    def report(
        item: Mapping[str, Any],
        success: bool,
        *,
        id_key: str,
        time_key: str,
        code_key: str,
        message_key: str,
    ) -> Receipt:
        """The receipt of one report, read from the provider's own key names."""
        message_id = item[id_key]
        if not isinstance(message_id, str):
            raise TypeError(f"{id_key!r} is not a string")
        return Receipt(
            provider_message_id=message_id,
            status="delivered" if success else "undelivered",
            at=parse_china_time(item.get(time_key)),
            error_code="" if success else str(item.get(code_key) or ""),
            error_message="" if success else str(item.get(message_key) or ""),
        )

    def check(self) -> list[CheckMessage]:
        if self.options.get("receipt_token"):
            return []
        return [
            CheckWarning(
                f"NOTIFICATIONS['BACKENDS'][{self.alias!r}] has no 'receipt_token'; "
                "its delivery receipts will be refused.",
                hint="Set a long random OPTION 'receipt_token' and end the receipt URL "
                "configured at the provider with ?token=<it> (or send it in the header "
                "X-Receipt-Token).",
                id="notifications.W101",
            )
        ]
