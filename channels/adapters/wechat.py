"""WeChat Pay v3 merchant transfer adapter (商家转账, payee-confirmation mode).

Hand-written on ``cryptography`` rather than on the ``wechatpayv3`` client: the client has no setting for its
server address (``Core._gate_way`` is a private attribute fixed to api.mch.weixin.qq.com), verifies signatures
only on 2xx answers and returns no headers, so a forged error answer could not be told apart, and it does not
check notification timestamps. The wire format is the documented one; the tests check it against the package's
own ``build_authorization`` / ``rsa_verify`` / ``aes_decrypt`` helpers.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from channels.base import (
    AccountKind,
    CallbackAnswer,
    ChannelError,
    ChannelRejected,
    ConfigError,
    ErrorAction,
    InvalidCallback,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
    StatementLine,
)

from ._common import (
    DEFAULT_CALLBACK_MAX_AGE,
    DEFAULT_TIMEOUT,
    Answer,
    Transport,
    bad_response,
    error_for,
    lower_headers,
    material,
    parse_statement,
    private_key,
    public_key,
    reason_for,
    rsa_sign,
    rsa_verify,
    setting,
)

PROVIDER = "wechat"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
TRANSFER_PATH = "/v3/fund-app/mch-transfer/transfer-bills"
OUT_BILL_NO = re.compile(r"^[A-Za-z0-9]{1,32}$")
STATE = {
    "ACCEPTED": PayoutStatus.PROCESSING,
    "PROCESSING": PayoutStatus.PROCESSING,
    "TRANSFERING": PayoutStatus.PROCESSING,
    "CANCELING": PayoutStatus.PROCESSING,
    "WAIT_USER_CONFIRM": PayoutStatus.AWAITING_PAYEE,
    "SUCCESS": PayoutStatus.SUCCEEDED,
    "FAIL": PayoutStatus.FAILED,
    "CANCELLED": PayoutStatus.FAILED,
    "RETURNED": PayoutStatus.RETURNED,  # sandbox extension, see channels/gateway/wechat.py
}
DEFAULT_REPORT_INFOS = [
    {"info_type": "岗位类型", "info_content": "商户"},
    {"info_type": "报酬说明", "info_content": "余额提现"},
]


class WeChatAdapter:
    """Config: base_url, mch_id, appid, merchant_private_key | merchant_private_key_file, merchant_serial_no,
    platform_public_key | platform_public_key_file, platform_public_key_id, apiv3_key | apiv3_key_file,
    notify_url, transfer_scene_id (default 1005), transfer_remark, user_recv_perception,
    transfer_scene_report_infos, timeout (s), callback_max_age (s)."""

    def __init__(self, code: str, config: dict[str, Any]) -> None:
        self.code = code
        self.base_url = str(setting(config, "base_url")).rstrip("/")
        self.mch_id = str(setting(config, "mch_id"))
        self.appid = str(setting(config, "appid"))
        self.merchant_key = private_key(material(config, "merchant_private_key"))
        self.merchant_serial = str(setting(config, "merchant_serial_no"))
        self.platform_key = public_key(material(config, "platform_public_key"))
        self.platform_key_id = str(setting(config, "platform_public_key_id"))
        self.apiv3_key = material(config, "apiv3_key").encode()
        if len(self.apiv3_key) != 32:
            raise ConfigError("apiv3_key must be 32 bytes")
        self.notify_url = str(config.get("notify_url", ""))
        self.scene_id = str(config.get("transfer_scene_id", "1005"))
        self.remark = str(config.get("transfer_remark", "提现"))
        self.perception = str(config.get("user_recv_perception", "劳务报酬"))
        self.report_infos = list(config.get("transfer_scene_report_infos", DEFAULT_REPORT_INFOS))
        self.callback_max_age = int(config.get("callback_max_age", DEFAULT_CALLBACK_MAX_AGE))
        self.transport = Transport(float(config.get("timeout", DEFAULT_TIMEOUT)))

    # --- ChannelAdapter ------------------------------------------------------------------------------------
    def submit(self, request: PayoutRequest) -> PayoutResult:
        if request.account_kind != AccountKind.WECHAT or request.currency != "CNY":
            raise ChannelRejected(
                f"wechat pays CNY to WeChat users only, not {request.account_kind} {request.currency}",
                reason_code="account_kind_unsupported",
                action=ErrorAction.REROUTE,
            )
        if not OUT_BILL_NO.match(request.order_no):
            raise ChannelRejected(
                "wechat out_bill_no allows 1-32 letters and digits only",
                reason_code="order_no_unsupported",
                action=ErrorAction.REROUTE,
            )
        body: dict[str, Any] = {
            "appid": self.appid,
            "out_bill_no": request.order_no,
            "transfer_scene_id": self.scene_id,
            "openid": request.account_number,
            "transfer_amount": request.amount,
            "transfer_remark": (request.remark or self.remark)[:32],
            "notify_url": self.notify_url,
            "user_recv_perception": self.perception,
            "transfer_scene_report_infos": self.report_infos,
        }
        if request.holder_name:
            body["user_name"] = self._encrypt(request.holder_name)
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        answer = self._call("POST", TRANSFER_PATH, payload)
        if answer.status != 200:
            code, message = self._error_code(answer)
            if code == "INVALID_REQUEST" and self.query(request.order_no).status != PayoutStatus.NOT_FOUND:
                code = "ORDER_CONFLICT"  # the bill exists: a resubmit that differs; never fail it blindly
            raise error_for(PROVIDER, code, message)
        return self._result(self._json(answer), amount=request.amount)

    def query(self, order_no: str) -> PayoutResult:
        answer = self._call("GET", f"{TRANSFER_PATH}/out-bill-no/{order_no}")
        if answer.status == 404:
            return PayoutResult(order_no=order_no, status=PayoutStatus.NOT_FOUND, provider_code="NOT_FOUND")
        if answer.status != 200:
            raise error_for(PROVIDER, *self._error_code(answer))
        content = self._json(answer)
        return self._result(content, amount=int(content["transfer_amount"]) if "transfer_amount" in content else None)

    @staticmethod
    def callback_answer(*, accepted: bool, outcome: str) -> CallbackAnswer:
        """WeChat Pay v3: 200 with code SUCCESS acknowledges; anything else (4xx/5xx, code FAIL) is retried."""
        del outcome
        if accepted:
            return CallbackAnswer.json(200, {"code": "SUCCESS", "message": "成功"})
        return CallbackAnswer.json(401, {"code": "FAIL", "message": "失败"})

    def parse_callback(self, headers: dict[str, str], body: bytes) -> PayoutResult:
        h = lower_headers(headers)
        if h.get("wechatpay-serial") != self.platform_key_id:
            raise InvalidCallback("wechat notification signed by an unknown platform key")
        if h.get("wechatpay-signature-type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
            raise InvalidCallback("wechat notification signature type unsupported")
        timestamp = h.get("wechatpay-timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.callback_max_age:
            raise InvalidCallback("wechat notification timestamp missing or stale")
        if not self._verify(h, body):
            raise InvalidCallback("wechat notification signature does not verify")
        try:
            data = json.loads(body)
            resource = data["resource"]
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise InvalidCallback("wechat notification resource algorithm unsupported")
            plain = AESGCM(self.apiv3_key).decrypt(
                str(resource["nonce"]).encode(),
                base64.b64decode(resource["ciphertext"]),
                str(resource.get("associated_data", "")).encode(),
            )
            content = json.loads(plain)
            result = self._result(content, amount=int(content["transfer_amount"]))
        except InvalidTag:
            raise InvalidCallback("wechat notification resource does not decrypt under the APIv3 key")
        except (ValueError, KeyError, TypeError, ChannelError) as exc:
            raise InvalidCallback(f"wechat notification malformed: {exc!r}")
        if content.get("mch_id", self.mch_id) != self.mch_id:
            raise InvalidCallback("wechat notification for another merchant")
        return replace(result, raw={**result.raw, "notify_id": str(data.get("id", ""))})

    def fetch_statement(self, date: dt.date) -> list[StatementLine]:
        answer = self._call("GET", f"/v3/bill/fundflowbill?bill_date={date.isoformat()}&account_type=BASIC")
        if answer.status != 200:
            raise error_for(PROVIDER, *self._error_code(answer))
        meta = self._json(answer)
        url = urlsplit(str(meta["download_url"]))
        path = url.path + (f"?{url.query}" if url.query else "")
        # The file itself is not signed; its SHA1 from the signed answer above vouches for it.
        file = self._call("GET", path, verify=False, base=f"{url.scheme}://{url.netloc}")
        digest = hashlib.sha1(file.body).hexdigest()  # the protocol's choice of hash
        if file.status != 200 or not hmac.compare_digest(digest, str(meta.get("hash_value", ""))):
            raise ChannelRejected(
                f"wechat bill download HTTP {file.status} or hash mismatch",
                reason_code="channel_response_invalid",
                action=ErrorAction.RETRY,
            )
        return parse_statement(PROVIDER, file.body)

    # --- protocol ------------------------------------------------------------------------------------------
    def _authorization(self, method: str, path: str, body: bytes) -> str:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16).upper()
        message = f"{method}\n{path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
        signature = rsa_sign(self.merchant_key, message)
        return (
            f'{SIGNATURE_TYPE} mchid="{self.mch_id}",nonce_str="{nonce}",signature="{signature}",'
            f'timestamp="{timestamp}",serial_no="{self.merchant_serial}"'
        )

    def _call(self, method: str, path: str, body: bytes = b"", verify: bool = True, base: str = "") -> Answer:
        headers = {
            "Authorization": self._authorization(method, path, body),
            "Accept": "application/json",
            "Content-Type": "application/json",
            "Wechatpay-Serial": self.platform_key_id,
        }
        answer = self.transport.send(method, (base or self.base_url) + path, headers, body)
        if verify and not self._verify(answer.headers, answer.body):
            raise bad_response(PROVIDER, f"{method} {path}: HTTP {answer.status} answer not signed by WeChat Pay")
        return answer

    def _verify(self, headers: dict[str, str], body: bytes) -> bool:
        if headers.get("wechatpay-serial") != self.platform_key_id:
            return False
        message = f"{headers.get('wechatpay-timestamp', '')}\n{headers.get('wechatpay-nonce', '')}\n".encode()
        return rsa_verify(self.platform_key, message + body + b"\n", headers.get("wechatpay-signature", ""))

    def _encrypt(self, text: str) -> str:
        oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
        return base64.b64encode(self.platform_key.encrypt(text.encode(), oaep)).decode()

    @staticmethod
    def _json(answer: Answer) -> dict[str, Any]:
        try:
            data = json.loads(answer.body)
        except ValueError:
            raise bad_response(PROVIDER, "answer is not JSON")
        if not isinstance(data, dict):
            raise bad_response(PROVIDER, "answer is not a JSON object")
        return data

    def _error_code(self, answer: Answer) -> tuple[str, str]:
        data = self._json(answer)
        if not data.get("code"):
            raise bad_response(PROVIDER, f"HTTP {answer.status} without an error code")
        return str(data["code"]), str(data.get("message", ""))

    def _result(self, content: dict[str, Any], amount: int | None) -> PayoutResult:
        state = str(content.get("state", ""))
        status = STATE.get(state)
        if status is None:
            raise bad_response(PROVIDER, f"state {state!r} unknown")
        code = str(content.get("fail_reason") or "")
        if state == "CANCELLED" and not code:
            code = "CANCELLED"
        return PayoutResult(
            order_no=str(content["out_bill_no"]),
            status=status,
            channel_reference=str(content.get("transfer_bill_no", "")),
            reason_code=reason_for(PROVIDER, code) if status in (PayoutStatus.FAILED, PayoutStatus.RETURNED) else "",
            provider_code=code or state,
            message=state,
            amount=amount,
            raw=dict(content),
        )
