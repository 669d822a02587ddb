"""The Stripe webhook endpoint, ``stripe/webhook/`` (``renewals:stripe_webhook``).

The ``Stripe-Signature`` header is checked on the raw body with the SDK against every
signing secret configured (``RENEWALS["GATEWAY"]["OPTIONS"]["webhook_secret"]``, a list while
rotating), with Stripe's tolerance of five minutes, before anything is read or written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import stripe
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..exceptions import GatewayError, WebhookEventFailed, WebhookRejected
from ..gateways.stripe import stripe_gateway
from ..services.stripe_events import receive_event

logger = logging.getLogger("renewals.webhooks")

#: Seconds a signature stays valid: older requests are replays (Stripe's own default).
TOLERANCE = 300


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Verify, store and apply one Stripe event.

    Answers 404 on a site that bills through no Stripe gateway; 400 (with one warning
    logged, nothing stored) when the signature is missing,
    forged or stale; 200 once the event is stored and applied, or was before, or needs
    nothing; 500 when applying it failed: it is kept with the error, and Stripe sends it
    again.
    """
    try:
        secrets = stripe_gateway().webhook_secrets
    except GatewayError:
        raise Http404("No Stripe gateway is configured.") from None
    try:
        payload = verified_event(request.body, request.headers.get("Stripe-Signature"), secrets)
    except WebhookRejected as rejected:
        logger.warning("Stripe webhook rejected: %s", rejected)
        return HttpResponse(status=400)
    try:
        receive_event(payload)
    except WebhookEventFailed:
        return HttpResponse(status=500)  # logged, with the event kept
    return HttpResponse()


def verified_event(body: bytes, signature: str | None, secrets: Sequence[str]) -> dict[str, Any]:
    """The event in ``body`` if ``signature`` (the ``Stripe-Signature`` header) signs it,
    recently, with one of ``secrets``; else :class:`~renewals.exceptions.WebhookRejected`."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise WebhookRejected("the body is not UTF-8") from None
    failures = []
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, signature, secret, TOLERANCE)
        except stripe.SignatureVerificationError as exc:
            failures.append(str(exc))
        else:
            return _event(text)
    raise WebhookRejected("; ".join(dict.fromkeys(failures)) or "no webhook secret is configured")


def _event(text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except ValueError:
        raise WebhookRejected("the signed body is not JSON") from None
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("id"), str)
        and isinstance(payload.get("type"), str)
        and isinstance(payload.get("created"), int)
        and isinstance(payload.get("data"), dict)
        and isinstance(payload["data"].get("object"), dict)
    ):
        raise WebhookRejected("the signed body is not a Stripe event")
    return payload
