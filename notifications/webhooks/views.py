"""The delivery receipt webhook: one URL per backend alias."""

from __future__ import annotations

import logging

from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..backends import get_backend
from ..backends._receipts import ReceiptHandler
from ..conf import notifications_settings
from ..status import apply_receipt

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def receipt(request: HttpRequest, alias: str) -> HttpResponse:
    """Verify a provider's callback, apply its receipts in one transaction, acknowledge it.

    A forged or malformed callback is answered 400 before anything is written; a failure
    while applying is answered 500 (and rolled back) so the provider sends it again.
    """
    if alias not in notifications_settings.BACKENDS:
        raise Http404("No such notifications backend.")
    backend = get_backend(alias)
    if not (backend.supports_receipts and isinstance(backend, ReceiptHandler)):
        raise Http404("This backend reports no receipts.")
    receipts = backend.parse_receipts(request)
    try:
        with transaction.atomic():
            for item in receipts:
                apply_receipt(backend_alias=alias, receipt=item)
    except Exception:
        logger.exception("Applying %d receipt(s) for backend %r failed.", len(receipts), alias)
        return HttpResponse(status=500)
    return backend.receipt_response(receipts)
