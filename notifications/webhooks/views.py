"""The delivery receipt webhook: one URL per backend alias."""

from __future__ import annotations

import logging

from django.core.exceptions import BadRequest, SuspiciousOperation
from django.db import transaction
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseNotFound,
    UnreadablePostError,
)
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..backends import get_backend
from ..backends._receipts import ReceiptHandler
from ..conf import notifications_settings
from ..phone import mask_numbers
from ..status import apply_receipt
from .redaction import hide_receipt_token
from .validation import storable

logger = logging.getLogger(__name__)

#: What reading a forged or malformed callback raises: each is answered 400.
REFUSED = (BadRequest, SuspiciousOperation, MultiPartParserError, UnreadablePostError)


@csrf_exempt
def receipt(request: HttpRequest, alias: str) -> HttpResponse:
    """Verify a provider's callback, apply its receipts in one transaction, acknowledge it.

    A forged or malformed callback is answered 400 and changes nothing; any other failure is
    logged and answered 500 (and rolled back), so that the provider sends the callback again.
    No exception leaves the view, and the request leaves it with its ``?token=`` masked, so no
    report of the request shows the token.
    """
    try:
        return _receive(request, alias)
    except Exception:
        logger.exception("The receipt callback for backend %r failed.", alias)
        return HttpResponse(status=500)
    finally:
        hide_receipt_token(request)


@require_POST
def _receive(request: HttpRequest, alias: str) -> HttpResponse:
    if alias not in notifications_settings.BACKENDS:
        return HttpResponseNotFound("No such notifications backend.")
    backend = get_backend(alias)
    if not (backend.supports_receipts and isinstance(backend, ReceiptHandler)):
        return HttpResponseNotFound("This backend reports no receipts.")
    try:
        receipts = [storable(item) for item in backend.parse_receipts(request)]
    except REFUSED as exc:
        logger.warning(
            "Refused a receipt callback for backend %r: %s", alias, mask_numbers(str(exc))
        )
        return HttpResponseBadRequest()
    with transaction.atomic():
        for item in receipts:
            apply_receipt(backend_alias=alias, receipt=item)
    return backend.receipt_response(receipts)
