"""Receipt callbacks as each provider sends them, and the deliveries they name."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any
from urllib.parse import urlencode

from django.test import Client
from django.utils import timezone

from notifications.models import Delivery

TWILIO_URL = "/notifications/receipts/tw/"
AUTH_TOKEN = "twilio-auth-token"
RECEIPT_TOKEN = "s3cret-receipt-token"


#: The backends the receipt tests post to.
RECEIPT_BACKENDS: dict[str, Any] = {
    "tw": {
        "BACKEND": "notifications.backends.twilio.TwilioSMSBackend",
        "OPTIONS": {
            "account_sid": "AC1",
            "auth_token": AUTH_TOKEN,
            "from_number": "+15005550006",
        },
    },
    "tw-proxied": {
        "BACKEND": "notifications.backends.twilio.TwilioSMSBackend",
        "OPTIONS": {
            "account_sid": "AC1",
            "auth_token": AUTH_TOKEN,
            "from_number": "+15005550006",
            "webhook_url_base": "https://club.example.com/",
        },
    },
    "ali": {
        "BACKEND": "notifications.backends.aliyun.AliyunSMSBackend",
        "OPTIONS": {
            "access_key_id": "a",
            "access_key_secret": "b",
            "receipt_token": RECEIPT_TOKEN,
        },
    },
    "tc": {
        "BACKEND": "notifications.backends.tencent.TencentSMSBackend",
        "OPTIONS": {
            "secret_id": "a",
            "secret_key": "b",
            "sdk_app_id": "1400000000",
            "receipt_token": RECEIPT_TOKEN,
        },
    },
    "ali-open": {
        "BACKEND": "notifications.backends.aliyun.AliyunSMSBackend",
        "OPTIONS": {"access_key_id": "a", "access_key_secret": "b"},
    },
    "jp": {
        "BACKEND": "notifications.backends.jpush.JPushBackend",
        "OPTIONS": {"app_key": "a", "master_secret": "b"},
    },
}


def delivery(alias: str, provider_id: str, status: str = Delivery.Status.SENT) -> Delivery:
    now = timezone.now()
    return Delivery.objects.create(
        channel=Delivery.Channel.SMS,
        backend_alias=alias,
        recipient="+86 138****5678",
        recipient_key="user:1",
        template_key="renewals.notice",
        locale="zh-hans",
        dispatch_key=f"notice:{provider_id}",
        idempotency_key=f"notice:{provider_id}:sms",
        status=status,
        queued_at=now,
        sent_at=now,
        provider_message_id=provider_id,
    )


def twilio_post(
    client: Client,
    params: dict[str, str],
    *,
    url: str = TWILIO_URL,
    signed_url: str = "",
    tamper: dict[str, str] | None = None,
    **extra: Any,
) -> Any:
    """Post like Twilio: the signature is computed here from Twilio's documented recipe.
    ``extra`` goes to the test client (``secure``, ``HTTP_HOST``…)."""
    signed_url = signed_url or "http://testserver" + url
    payload = signed_url + "".join(k + params[k] for k in sorted(params))
    signature = base64.b64encode(
        hmac.new(AUTH_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    ).decode()
    return client.post(
        url,
        urlencode({**params, **(tamper or {})}),
        content_type="application/x-www-form-urlencoded",
        HTTP_X_TWILIO_SIGNATURE=signature,
        **extra,
    )


TWILIO_DELIVERED = {
    "MessageSid": "SM1",
    "MessageStatus": "delivered",
    "AccountSid": "AC1",
    "To": "+14155550100",
    "ApiVersion": "2010-04-01",
}


def post_json(client: Client, alias: str, body: object, token: str = RECEIPT_TOKEN) -> Any:
    content = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    return client.post(
        f"/notifications/receipts/{alias}/?token={token}", content, content_type="application/json"
    )


def aliyun_report(biz_id: str, success: bool, report_time: str) -> dict[str, object]:
    return {
        "phone_number": "13800138000",
        "send_time": "2025-03-01 16:00:00",
        "report_time": report_time,
        "success": success,
        "err_code": "DELIVERED" if success else "MK:0001",
        "err_msg": "用户接收成功" if success else "空号",
        "sms_size": "1",
        "biz_id": biz_id,
        "out_id": "",
    }
