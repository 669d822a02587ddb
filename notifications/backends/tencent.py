"""Tencent Cloud SMS (API 3.0 ``SendSms``, version 2021-01-11), with delivery report pushes."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from django.utils import timezone

from ..exceptions import BackendError
from ..messages import Receipt, SendResult, SMSMessage
from ._http import (
    HTTP_OPTIONS,
    ErrorTable,
    HTTPBackend,
    accepted,
    is_transient,
    json_body,
    json_object,
    malformed_reply,
)
from ._receipts import TokenJSONReceipts
from ._templates import ApprovedTemplates
from .base import SMSBackend

HOST = "sms.tencentcloudapi.com"
SERVICE = "sms"
API_VERSION = "2021-01-11"
CONTENT_TYPE = "application/json; charset=utf-8"

ERRORS = ErrorTable(
    retry=frozenset({"RequestLimitExceeded"}),
    retry_prefixes=("LimitExceeded.", "InternalError"),
    backend=frozenset(
        {
            "FailedOperation.InsufficientBalanceInSmsPackage",
            "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
            "UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny",
        }
    ),
    backend_prefixes=("AuthFailure",),
)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_authorization(
    secret_id: str,
    secret_key: str,
    *,
    signed_headers: Mapping[str, str],
    payload: bytes,
    timestamp: int,
    service: str = SERVICE,
) -> str:
    """The ``Authorization`` header of TC3-HMAC-SHA256 for a JSON POST to ``/``.

    ``signed_headers`` maps the lowercase names of the headers that are signed (at least
    ``content-type`` and ``host``) to their values.
    """
    date = dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d")
    headers = sorted((name, value.strip().lower()) for name, value in signed_headers.items())
    names = ";".join(name for name, _ in headers)
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            "".join(f"{name}:{value}\n" for name, value in headers),
            names,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode(), date), service), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders={names}, Signature={signature}"
    )


def template_param_list(params: Mapping[str, str]) -> list[str]:
    """Tencent templates take positional values ``{1}``, ``{2}``…: numeric keys in numeric
    order, any other keys in the order given."""
    if all(key.isdigit() for key in params):
        return [params[key] for key in sorted(params, key=int)]
    return list(params.values())


class TencentSMSBackend(ApprovedTemplates, TokenJSONReceipts, HTTPBackend[SMSMessage], SMSBackend):
    """Sends approved templates through ``SendSms``, up to 200 numbers per call.

    Consecutive messages with the same template, values and signature share a call. Each
    message needs a ``template_code`` (the TemplateId); ``sign_name`` comes from the message
    or the OPTION.
    """

    provider = "tencent"
    extra = "tencent"
    batch_size = 200
    option_names = HTTP_OPTIONS | {
        "secret_id",
        "secret_key",
        "sdk_app_id",
        "sign_name",
        "region",
        "receipt_token",
        "template_codes",
    }
    required_options = frozenset({"secret_id", "secret_key", "sdk_app_id"})
    receipt_ack = {"result": 0, "errmsg": "OK"}

    def batches(self, messages: Sequence[SMSMessage]) -> Iterator[Sequence[SMSMessage]]:
        batch: list[SMSMessage] = []
        for message in messages:
            if batch and (
                len(batch) == self.batch_size
                or self._batch_key(message) != self._batch_key(batch[0])
                or any(m.to == message.to for m in batch)
            ):
                yield batch
                batch = []
            batch.append(message)
        if batch:
            yield batch

    def _batch_key(self, message: SMSMessage) -> tuple[Any, ...]:
        return (message.template_code, message.sign_name, tuple(message.template_params.items()))

    def send_batch(self, batch: Sequence[SMSMessage]) -> list[SendResult]:
        o = self.options
        first = batch[0]
        template_code, sign_name = self.approved(first)
        payload = json.dumps(
            {
                "PhoneNumberSet": [m.to for m in batch],
                "SmsSdkAppId": o["sdk_app_id"],
                "SignName": sign_name,
                "TemplateId": template_code,
                "TemplateParamSet": template_param_list(first.template_params),
            },
            ensure_ascii=False,
        ).encode()
        timestamp = int(timezone.now().timestamp())
        headers = {
            "Authorization": tc3_authorization(
                o["secret_id"],
                o["secret_key"],
                signed_headers={
                    "content-type": CONTENT_TYPE,
                    "host": HOST,
                    "x-tc-action": "SendSms",
                },
                payload=payload,
                timestamp=timestamp,
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": HOST,
            "X-TC-Action": "SendSms",
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Version": API_VERSION,
            "X-TC-Region": o.get("region", "ap-guangzhou"),
        }
        response = self.client.post(f"https://{HOST}/", content=payload, headers=headers)
        body = json_object(json_body(response).get("Response"))
        send_statuses = body.get("SendStatusSet")
        if not isinstance(send_statuses, list):
            error = json_object(body.get("Error"))
            if response.is_success and not error:
                return [malformed_reply("SendStatusSet")] * len(batch)
            code = error.get("Code") or str(response.status_code)
            result = ERRORS.result(
                code, error.get("Message", ""), transient=is_transient(response.status_code)
            )
            return [result] * len(batch)
        statuses = {s.get("PhoneNumber"): s for s in map(json_object, send_statuses)}
        return [self._status_result(statuses.get(m.to)) for m in batch]

    def _status_result(self, status: Mapping[str, Any] | None) -> SendResult:
        if status is None:
            return SendResult.retry("no_status", "Tencent returned no status for this number.")
        if status.get("Code") == "Ok":
            return accepted(status.get("SerialNo"), "SerialNo")
        code, message = status.get("Code", ""), status.get("Message", "")
        try:
            return ERRORS.result(code, message)
        except BackendError:  # the call went through: other numbers may have been sent
            return SendResult.retry(code, message)

    def receipt_from_item(self, item: Mapping[str, Any]) -> Receipt:
        report = item["report_status"]
        if report not in ("SUCCESS", "FAIL"):
            raise ValueError(f"unknown report_status {report!r}")
        return self.report(
            item,
            report == "SUCCESS",
            id_key="sid",
            time_key="user_receive_time",
            code_key="errmsg",
            message_key="description",
        )
