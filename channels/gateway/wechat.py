"""WeChat Pay v3 merchant transfer (商家转账, payee confirmation mode), bill download, notifications.

Requests carry ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,nonce_str=..,signature=..,
timestamp=..,serial_no=..``: SHA256withRSA by the *merchant* key over
``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``.
Answers and notifications carry ``Wechatpay-Timestamp/-Nonce/-Signature/-Serial``: SHA256withRSA by the
*platform* key over ``TIMESTAMP\\nNONCE\\nBODY\\n``. Notification resources are AEAD_AES_256_GCM under the
APIv3 key. ``user_name`` arrives RSA-OAEP(SHA1)-encrypted with the platform public key.

Sandbox extension: a bank return, which WeChat balance transfers do not have in production, is shown as
state ``RETURNED`` with fail_reason ``BANK_RETURNED`` so the sandbox_rules RETURNED behaviour exists on every
protocol.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
import threading
import time
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import rsa_sign
from .engine import CST, Dialect, Engine, Outcome, Protocol, Submission
from .keys import GatewayKeys
from .notifier import OutgoingCallback
from .store import Payout
from .web import NonceCache, Request, Response, json_bytes

CHANNEL = "wechat"
TRANSFER_PATH = "/v3/fund-app/mch-transfer/transfer-bills"
QUERY_PREFIX = TRANSFER_PATH + "/out-bill-no/"
MAX_SKEW = 300
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"

DIALECT = Dialect(
    channel=CHANNEL,
    codes={
        "busy": "SYSTEM_ERROR",
        "maintenance": "SYSTEM_ERROR",
        "conflict": "INVALID_REQUEST",
        "invalid_account": "OPENID_INVALID",
        "account_frozen": "ACCOUNT_FROZEN",
        "name_mismatch": "NAME_NOT_CORRECT",
        "returned": "BANK_RETURNED",
        "unclaimed": "OVERDUE_CLOSE",
    },
    fail_codes=frozenset(
        {
            "OPENID_INVALID",
            "ACCOUNT_FROZEN",
            "ACCOUNT_NOT_EXIST",
            "NAME_NOT_CORRECT",
            "REAL_NAME_CHECK_FAIL",
            "TRANSFER_QUOTA_EXCEED",
            "DAY_RECEIVED_QUOTA_EXCEED",
            "TRANSFER_RISK",
        }
    ),
    reference_prefix="1330000",
    awaits_payee=True,
)
HTTP_STATUS = {
    "PARAM_ERROR": 400,
    "INVALID_REQUEST": 400,
    "SIGN_ERROR": 401,
    "NO_AUTH": 403,
    "NOT_ENOUGH": 403,
    "PRODUCT_NOT_SIGN": 403,
    "NOT_FOUND": 404,
    "FREQUENCY_LIMITED": 429,
    "SYSTEM_ERROR": 500,
}


def state_of(p: Payout) -> str:
    if p.status == "failed" and p.provider_code == DIALECT.codes["unclaimed"]:
        return "CANCELLED"
    return {
        "processing": "TRANSFERING",
        "awaiting_payee": "WAIT_USER_CONFIRM",
        "succeeded": "SUCCESS",
        "failed": "FAIL",
        "returned": "RETURNED",
    }[p.status]


def _rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, CST).isoformat(timespec="seconds")


def parse_authorization(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    if scheme != SIGNATURE_TYPE:
        return {}
    return dict(re.findall(r'(\w+)="([^"]*)"', rest))


class WeChat:
    def __init__(self, engine: Engine, keys: GatewayKeys) -> None:
        self.engine = engine
        self.keys = keys
        self.nonces = NonceCache()
        self._bills: dict[str, tuple[str, float]] = {}
        self._bills_lock = threading.Lock()
        engine.register(Protocol(DIALECT, self.build_callback))

    def handle(self, request: Request) -> Response | None:
        path = request.path
        if not path.startswith(("/v3/fund-app/mch-transfer/", "/v3/bill/", "/v3/billdownload/")):
            return None
        problem = self._authenticate(request)
        if problem:
            return self._error("SIGN_ERROR", problem)
        if request.method == "POST" and path == TRANSFER_PATH:
            return self._transfer(request)
        if request.method == "GET" and path.startswith(QUERY_PREFIX):
            self.engine.sleep_latency(CHANNEL)
            payout = self.engine.lookup(CHANNEL, path[len(QUERY_PREFIX) :])
            if payout is None:
                return self._error("NOT_FOUND", "记录不存在")
            return self._answer(200, self._bill_fields(payout))
        if request.method == "GET" and path == "/v3/bill/fundflowbill":
            return self._bill_url(request)
        if request.method == "GET" and path == "/v3/billdownload/file":
            return self._bill_file(request.query.get("token", ""))
        return self._error("PARAM_ERROR", f"no such endpoint: {request.method} {path}")

    def _authenticate(self, request: Request) -> str:
        auth = parse_authorization(request.headers.get("authorization", ""))
        if not auth:
            return "Authorization missing or not WECHATPAY2-SHA256-RSA2048"
        if auth.get("mchid") != self.keys.wechat_mch_id:
            return "mchid unknown"
        if auth.get("serial_no") != self.keys.wechat_merchant_serial:
            return "merchant certificate serial_no unknown"
        timestamp, nonce = auth.get("timestamp", ""), auth.get("nonce_str", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW:
            return "timestamp expired"
        message = f"{request.method}\n{request.raw_path}\n{timestamp}\n{nonce}\n".encode() + request.body + b"\n"
        if not rsa_sign.verify(self.keys.wechat_merchant_public, message, auth.get("signature", "")):
            return "signature does not verify"
        if not self.nonces.first_use(nonce):
            return "nonce reused"
        return ""

    def _transfer(self, request: Request) -> Response:
        try:
            data = request.json()
            out_bill_no = str(data["out_bill_no"])
            amount = int(data["transfer_amount"])
            openid = str(data["openid"])
            scene, remark = str(data["transfer_scene_id"]), str(data["transfer_remark"])
        except (ValueError, KeyError, TypeError) as exc:
            return self._error("PARAM_ERROR", f"missing or malformed field: {exc}")
        if data.get("appid") != self.keys.wechat_appid:
            return self._error("PARAM_ERROR", "appid does not belong to mchid")
        if not re.fullmatch(r"[A-Za-z0-9]{1,32}", out_bill_no) or amount <= 0 or not openid or not scene or not remark:
            return self._error("PARAM_ERROR", "out_bill_no, transfer_amount, openid, scene and remark are required")
        name = ""
        if data.get("user_name"):
            if request.headers.get("wechatpay-serial") != self.keys.wechat_platform_key_id:
                return self._error("PARAM_ERROR", "Wechatpay-Serial must name the platform public key")
            try:
                name = self.keys.wechat_platform_private.decrypt(
                    base64.b64decode(data["user_name"]),
                    padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
                ).decode()
            except ValueError:
                return self._error("PARAM_ERROR", "user_name is not encrypted with the platform public key")
        sub = Submission(
            order_no=out_bill_no,
            amount=amount,
            currency="CNY",
            account_kind="wechat",
            account_number=openid,
            holder_name=name,
            notify_url=str(data.get("notify_url", "")),
        )
        return self._transfer_answer(self.engine.submit(CHANNEL, sub))

    def _transfer_answer(self, outcome: Outcome) -> Response:
        if outcome.kind in ("withhold", "drop"):
            return Response.withheld(outcome.hang_seconds)
        if outcome.kind == "refuse":
            message = "商户单号重复，但参数不一致" if outcome.code == "INVALID_REQUEST" else outcome.code
            return self._error(outcome.code, message)
        p = outcome.payout
        assert p is not None
        body: dict[str, object] = {
            "out_bill_no": p.order_no,
            "transfer_bill_no": p.reference,
            "create_time": _rfc3339(p.created_at),
            "state": state_of(p),
        }
        if p.status == "awaiting_payee":
            body["package_info"] = "affffddafdfafddffda==" + p.reference[-8:]
        if p.provider_code:
            body["fail_reason"] = p.provider_code
        return self._answer(200, body)

    def _bill_fields(self, p: Payout) -> dict[str, object]:
        fields: dict[str, object] = {
            "mch_id": self.keys.wechat_mch_id,
            "out_bill_no": p.order_no,
            "transfer_bill_no": p.reference,
            "appid": self.keys.wechat_appid,
            "state": state_of(p),
            "transfer_amount": p.amount,
            "transfer_remark": "",
            "openid": p.account_number,
            "create_time": _rfc3339(p.created_at),
            "update_time": _rfc3339(p.updated_at),
        }
        if p.provider_code:
            fields["fail_reason"] = p.provider_code
        return fields

    def _bill_url(self, request: Request) -> Response:
        date = request.query.get("bill_date", "")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            return self._error("PARAM_ERROR", "bill_date must be YYYY-MM-DD")
        content = self._csv(date)
        token = secrets.token_urlsafe(16)
        with self._bills_lock:
            self._bills[token] = (date, time.time() + 30)
        return self._answer(
            200,
            {
                "download_url": f"{request.base_url}/v3/billdownload/file?token={token}",
                "hash_type": "SHA1",
                "hash_value": hashlib.sha1(content).hexdigest(),
            },
        )

    def _bill_file(self, token: str) -> Response:
        with self._bills_lock:
            entry = self._bills.get(token)
        if entry is None or entry[1] < time.time():
            return self._error("NOT_FOUND", "bill link expired or unknown")
        return Response(200, self._csv(entry[0]), {"Content-Type": "text/csv; charset=utf-8"})

    def _csv(self, date: str) -> bytes:
        return self.engine.statement_csv(CHANNEL, date)

    # --- answers -------------------------------------------------------------------------------------------
    def _error(self, code: str, message: str) -> Response:
        return self._answer(HTTP_STATUS.get(code, 400), {"code": code, "message": message})

    def _answer(self, status: int, data: dict[str, object]) -> Response:
        body = json_bytes(data)
        headers = {"Content-Type": "application/json; charset=utf-8", "Request-ID": uuid.uuid4().hex}
        return Response(status, body, headers | self._signature_headers(body))

    def _signature_headers(self, body: bytes) -> dict[str, str]:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": rsa_sign.sign(self.keys.wechat_platform_private, message),
            "Wechatpay-Serial": self.keys.wechat_platform_key_id,
            "Wechatpay-Signature-Type": SIGNATURE_TYPE,
        }

    def build_callback(self, payout: Payout) -> OutgoingCallback:
        resource = {
            "out_bill_no": payout.order_no,
            "transfer_bill_no": payout.reference,
            "state": state_of(payout),
            "mch_id": self.keys.wechat_mch_id,
            "transfer_amount": payout.amount,
            "openid": payout.account_number,
            "fail_reason": payout.provider_code,
            "create_time": _rfc3339(payout.created_at),
            "update_time": _rfc3339(payout.updated_at),
        }
        nonce = secrets.token_hex(6)  # 12 characters, used as the 12-byte GCM nonce
        associated = "mch_payment"
        ciphertext = AESGCM(self.keys.wechat_apiv3_key.encode()).encrypt(
            nonce.encode(), json_bytes(resource), associated.encode()
        )
        notify_id = str(uuid.uuid4())
        body = json_bytes(
            {
                "id": notify_id,
                "create_time": _rfc3339(time.time()),
                "resource_type": "encrypt-resource",
                "event_type": "MCHTRANSFER.BILL.FINISHED",
                "summary": "商家转账单据终态通知",
                "resource": {
                    "original_type": "mch_payment",
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(ciphertext).decode(),
                    "associated_data": associated,
                    "nonce": nonce,
                },
            }
        )
        headers = {"Content-Type": "application/json"} | self._signature_headers(body)
        return OutgoingCallback(CHANNEL, payout.order_no, notify_id, payout.notify_url, headers, body)
