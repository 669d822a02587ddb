"""Alibaba Cloud SMS (dysmsapi ``SendSms``), with the HTTP batch push of delivery reports."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from django.utils import timezone

from ..exceptions import InvalidRecipient
from ..messages import Receipt, SendResult, SMSMessage
from ._http import HTTP_OPTIONS, ErrorTable, HTTPBackend, accepted, is_transient, json_body
from ._receipts import TokenJSONReceipts
from ._templates import ApprovedTemplates
from .base import SMSBackend

API_VERSION = "2017-05-25"

ERRORS = ErrorTable(
    retry=frozenset(
        {
            "isv.BUSINESS_LIMIT_CONTROL",  # per-number minute/hour/day frequency limits
            "isv.DAY_LIMIT_CONTROL",
            "isp.SYSTEM_ERROR",
            "SignatureNonceUsed",
        }
    ),
    retry_prefixes=("Throttling",),
    backend=frozenset(
        {
            "isv.AMOUNT_NOT_ENOUGH",  # the account is out of credit: every message would fail
            "isv.ACCOUNT_NOT_EXISTS",
            "isv.ACCOUNT_ABNORMAL",
            "isp.RAM_PERMISSION_DENY",
            "SignatureDoesNotMatch",
            "InvalidTimeStamp.Expired",
        }
    ),
    backend_prefixes=("InvalidAccessKeyId",),
)


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the RPC signature wants it (space as %20, ``~`` kept)."""
    return quote(value, safe="~")


def rpc_signature(access_key_secret: str, method: str, params: Mapping[str, str]) -> str:
    """The V1 RPC signature: HMAC-SHA1 over the sorted, percent-encoded parameters."""
    query = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(query)}"
    key = (access_key_secret + "&").encode()
    return base64.b64encode(hmac.new(key, string_to_sign.encode(), hashlib.sha1).digest()).decode()


def aliyun_number(e164: str) -> str:
    """``+8613800138000`` -> ``13800138000``; elsewhere the country code stays, without '+'."""
    if not e164.startswith("+") or not e164[1:].isdigit():
        raise InvalidRecipient("Aliyun needs an E.164 number (+ and digits).")
    digits = e164[1:]
    return digits[2:] if digits.startswith("86") else digits


class AliyunSMSBackend(ApprovedTemplates, TokenJSONReceipts, HTTPBackend[SMSMessage], SMSBackend):
    """Sends approved templates through ``SendSms`` (RPC, API version 2017-05-25).

    Each message needs a ``template_code``; ``sign_name`` comes from the message or the
    OPTION. Receipts arrive through the SmsReport HTTP batch push, protected by
    ``receipt_token``.
    """

    provider = "aliyun"
    extra = "aliyun"
    option_names = HTTP_OPTIONS | {
        "access_key_id",
        "access_key_secret",
        "sign_name",
        "endpoint",
        "region_id",
        "receipt_token",
        "template_codes",
    }
    required_options = frozenset({"access_key_id", "access_key_secret"})
    receipt_ack = {"code": 0, "msg": "成功"}

    def send_one(self, message: SMSMessage) -> SendResult:
        o = self.options
        template_code, sign_name = self.approved(message)
        params = {
            "AccessKeyId": o["access_key_id"],
            "Action": "SendSms",
            "Format": "JSON",
            "RegionId": o.get("region_id", "cn-hangzhou"),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
            "PhoneNumbers": aliyun_number(message.to),
            "SignName": sign_name,
            "TemplateCode": template_code,
        }
        if message.template_params:
            params["TemplateParam"] = json.dumps(
                message.template_params, ensure_ascii=False, separators=(",", ":")
            )
        params["Signature"] = rpc_signature(o["access_key_secret"], "POST", params)
        endpoint = o.get("endpoint", "dysmsapi.aliyuncs.com")
        response = self.client.post(f"https://{endpoint}/", data=params)
        body = json_body(response)
        code = body.get("Code") or str(response.status_code)
        if code == "OK":
            return accepted(body.get("BizId"), "BizId")
        return ERRORS.result(
            code, body.get("Message", ""), transient=is_transient(response.status_code)
        )

    def receipt_from_item(self, item: Mapping[str, Any]) -> Receipt:
        success = item["success"]
        if not isinstance(success, bool):
            raise ValueError("'success' is not a boolean")
        return self.report(
            item,
            success,
            id_key="biz_id",
            time_key="report_time",
            code_key="err_code",
            message_key="err_msg",
        )
