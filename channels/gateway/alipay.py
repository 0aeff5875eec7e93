"""Alipay open platform, the parts a payout needs: uni.transfer, common.query, bill download, order.changed.

Requests: form fields (the official SDKs put the common parameters in the query string and ``biz_content`` in
the body; both places are read), signed RSA2 with our *app* private key over the sorted ``k=v&...`` string of
every non-empty parameter except ``sign``.
Answers: ``{"<method>_response": {...}, "sign": "..."}`` signed RSA2
by the *platform* key over the exact text of the response object. Notifications: form POST of
``alipay.fund.trans.order.changed``, signed by the platform key over every non-empty field except ``sign`` and
``sign_type``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlencode

from . import rsa_sign
from .engine import CST, Dialect, Engine, Outcome, Protocol, Submission
from .keys import GatewayKeys
from .notifier import OutgoingCallback
from .store import Payout
from .web import Request, Response, json_bytes

CHANNEL = "alipay"
PATH = "/alipay/gateway.do"
BILL_PREFIX = "/alipay/bills/"
MAX_SKEW = 600

DIALECT = Dialect(
    channel=CHANNEL,
    codes={
        "busy": "SYSTEM_ERROR",
        "maintenance": "isp.unknow-error",
        "conflict": "PAYMENT_INFO_INCONSISTENCY",
        "invalid_account": "PAYEE_NOT_EXIST",
        "account_frozen": "PAYEE_ACCOUNT_STATUS_ERROR",
        "name_mismatch": "PAYEE_USER_INFO_ERROR",
        "returned": "BANK_RETURNED",
        "unclaimed": "UNCLAIMED",
    },
    fail_codes=frozenset(
        {
            "PAYEE_NOT_EXIST",
            "PAYEE_ACCOUNT_STATUS_ERROR",
            "PAYEE_USER_INFO_ERROR",
            "PAYEE_CARD_INFO_ERROR",
            "PERM_AML_NOT_REALNAME_REV",
        }
    ),
    reference_prefix="20",
)

# Codes outside 40004 "Business Failed". Anything else is a 40004 sub_code.
TOP_CODES = {
    "isp.unknow-error": ("20000", "Service Currently Unavailable"),
    "aop.invalid-auth-token": ("20001", "Insufficient Token Permissions"),
    "isv.missing-signature": ("40001", "Missing Required Arguments"),
    "isv.invalid-signature": ("40002", "Invalid Arguments"),
    "isv.invalid-app-id": ("40002", "Invalid Arguments"),
    "isv.invalid-timestamp": ("40002", "Invalid Arguments"),
    "isv.invalid-method": ("40002", "Invalid Arguments"),
    "isv.insufficient-isv-permissions": ("40006", "Insufficient Permissions"),
}
STATUS = {
    "processing": "DEALING",
    "awaiting_payee": "DEALING",
    "succeeded": "SUCCESS",
    "failed": "FAIL",
    "returned": "REFUND",
}
PRODUCTS = {
    "TRANS_ACCOUNT_NO_PWD": ("alipay", {"ALIPAY_LOGON_ID", "ALIPAY_USER_ID"}),
    "TRANS_BANKCARD_NO_PWD": ("bank_card", {"BANKCARD_ACCOUNT"}),
}
OUT_BIZ_NO = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def sign_content(params: dict[str, str], exclude: tuple[str, ...]) -> bytes:
    items = sorted((k, v) for k, v in params.items() if k not in exclude and v != "")
    return "&".join(f"{k}={v}" for k, v in items).encode()


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, CST).strftime("%Y-%m-%d %H:%M:%S")


class Alipay:
    def __init__(self, engine: Engine, keys: GatewayKeys) -> None:
        self.engine = engine
        self.app_id = keys.alipay_app_id
        self.app_public = keys.alipay_app_public
        self.platform_private = keys.alipay_platform_private
        self._bills: dict[str, tuple[str, float]] = {}  # token -> (date, expiry)
        self._bills_lock = threading.Lock()
        engine.register(Protocol(DIALECT, self.build_callback))

    def handle(self, request: Request) -> Response | None:
        if request.path.startswith(BILL_PREFIX) and request.method == "GET":
            return self._bill_file(request.path[len(BILL_PREFIX) :].removesuffix(".csv"))
        if request.path != PATH:
            return None
        params = dict(request.query)
        if request.body:
            params.update(parse_qsl(request.body.decode(params.get("charset") or "utf-8"), keep_blank_values=True))
        method = params.get("method", "")
        problem = self._authenticate(params)
        if problem:
            return self._error(method or "alipay.error", problem)
        try:
            biz = _json_object(params.get("biz_content", "{}"))
        except ValueError:
            return self._error(method, "INVALID_PARAMETER", "biz_content is not a JSON object")
        if method == "alipay.fund.trans.uni.transfer":
            return self._transfer(method, biz, params.get("notify_url", ""))
        if method == "alipay.fund.trans.common.query":
            self.engine.sleep_latency(CHANNEL)
            payout = self.engine.lookup(CHANNEL, str(biz.get("out_biz_no", "")))
            if payout is None:
                return self._error(method, "ORDER_NOT_EXIST", "转账订单不存在")
            return self._ok(method, self._query_fields(payout))
        if method == "alipay.data.dataservice.bill.downloadurl.query":
            return self._bill_url(method, biz, request)
        return self._error(method or "alipay.error", "isv.invalid-method", f"unknown method {method!r}")

    def _authenticate(self, params: dict[str, str]) -> str:
        if not params.get("sign"):
            return "isv.missing-signature"
        if params.get("app_id") != self.app_id:
            return "isv.invalid-app-id"
        try:
            sent = dt.datetime.strptime(params.get("timestamp", ""), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
        except ValueError:
            return "isv.invalid-timestamp"
        if abs(time.time() - sent.timestamp()) > MAX_SKEW:
            return "isv.invalid-timestamp"
        if params.get("sign_type") != "RSA2" or not rsa_sign.verify(
            self.app_public, sign_content(params, ("sign",)), params["sign"]
        ):
            return "isv.invalid-signature"
        return ""

    def _transfer(self, method: str, biz: dict[str, object], notify_url: str) -> Response:
        payee = biz.get("payee_info")
        product = str(biz.get("product_code", ""))
        if not isinstance(payee, dict) or product not in PRODUCTS or biz.get("biz_scene") != "DIRECT_TRANSFER":
            return self._error(method, "INVALID_PARAMETER", "payee_info, product_code and biz_scene are required")
        account_kind, identity_types = PRODUCTS[product]
        if payee.get("identity_type") not in identity_types or not payee.get("identity"):
            return self._error(method, "INVALID_PARAMETER", f"identity_type must be one of {sorted(identity_types)}")
        try:
            amount = Decimal(str(biz.get("trans_amount", "")))
        except InvalidOperation:
            return self._error(method, "INVALID_PARAMETER", "trans_amount must be yuan with 2 decimals")
        if amount != amount.quantize(Decimal("0.01")):
            return self._error(method, "INVALID_PARAMETER", "trans_amount must be yuan with 2 decimals")
        if amount < Decimal("0.10"):
            return self._error(method, "EXCEED_LIMIT_SM_MIN_AMOUNT", "单笔最低转账金额0.1元")
        out_biz_no = str(biz.get("out_biz_no", ""))
        if not OUT_BIZ_NO.match(out_biz_no):
            return self._error(method, "INVALID_PARAMETER", "out_biz_no missing or malformed")
        bankcard = payee.get("bankcard_ext_info") if isinstance(payee.get("bankcard_ext_info"), dict) else {}
        sub = Submission(
            order_no=out_biz_no,
            amount=int(amount * 100),
            currency="CNY",
            account_kind=account_kind,
            account_number=str(payee["identity"]),
            holder_name=str(payee.get("name", "")),
            bank_code=str(bankcard.get("bank_code", "")) if isinstance(bankcard, dict) else "",
            notify_url=notify_url,
        )
        return self._transfer_answer(method, self.engine.submit(CHANNEL, sub))

    def _transfer_answer(self, method: str, outcome: Outcome) -> Response:
        if outcome.kind in ("withhold", "drop"):
            return Response.withheld(outcome.hang_seconds)
        if outcome.kind == "refuse":
            return self._error(method, outcome.code)
        payout = outcome.payout
        assert payout is not None
        if payout.status == "failed":
            return self._error(method, payout.provider_code)
        fields = {
            "out_biz_no": payout.order_no,
            "order_id": payout.reference,
            "pay_fund_order_id": payout.reference + "P",
            "status": STATUS[payout.status],
            "trans_date": _time(payout.updated_at),
        }
        return self._ok(method, fields)

    def _query_fields(self, p: Payout) -> dict[str, object]:
        fields: dict[str, object] = {
            "order_id": p.reference,
            "pay_fund_order_id": p.reference + "P",
            "out_biz_no": p.order_no,
            "trans_amount": yuan(p.amount),
            "status": STATUS[p.status],
            "pay_date": _time(p.updated_at),
        }
        if p.provider_code:
            fields["error_code"] = p.provider_code
            fields["fail_reason"] = p.provider_code
        return fields

    def _bill_url(self, method: str, biz: dict[str, object], request: Request) -> Response:
        date = str(biz.get("bill_date", ""))
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date) or biz.get("bill_type") != "signcustomer":
            return self._error(method, "INVALID_PARAMETER", "bill_type signcustomer and bill_date YYYY-MM-DD")
        token = secrets.token_urlsafe(16)
        with self._bills_lock:
            self._bills[token] = (date, time.time() + 30)
        return self._ok(method, {"bill_download_url": f"{request.base_url}{BILL_PREFIX}{token}.csv"})

    def _bill_file(self, token: str) -> Response:
        with self._bills_lock:
            entry = self._bills.get(token)
        if entry is None or entry[1] < time.time():
            return Response(404, b"bill link expired or unknown", {"Content-Type": "text/plain"})
        content = self.engine.statement_csv(CHANNEL, entry[0])
        return Response(200, content, {"Content-Type": "text/csv; charset=utf-8"})

    # --- answers -------------------------------------------------------------------------------------------
    def _ok(self, method: str, fields: Mapping[str, object]) -> Response:
        return self._signed(method, {"code": "10000", "msg": "Success", **fields})

    def _error(self, method: str, code: str, message: str = "") -> Response:
        top, top_msg = TOP_CODES.get(code, ("40004", "Business Failed"))
        return self._signed(method, {"code": top, "msg": top_msg, "sub_code": code, "sub_msg": message or code})

    def _signed(self, method: str, content: dict[str, object]) -> Response:
        content_text = json_bytes(content)
        signature = rsa_sign.sign(self.platform_private, content_text)
        key = method.replace(".", "_") + "_response"
        body = b'{"' + key.encode() + b'":' + content_text + b',"sign":"' + signature.encode() + b'"}'
        return Response(200, body, {"Content-Type": "text/html;charset=utf-8"})

    def build_callback(self, payout: Payout) -> OutgoingCallback:
        notify_id = uuid.uuid4().hex
        biz = {
            "out_biz_no": payout.order_no,
            "order_id": payout.reference,
            "pay_fund_order_id": payout.reference + "P",
            "status": STATUS[payout.status],
            "trans_amount": yuan(payout.amount),
            "action_type": "REFUND" if payout.status == "returned" else "FINISH",
            "pay_date": _time(payout.updated_at),
            "error_code": payout.provider_code,
            "fail_reason": payout.provider_code,
            "origin_interface": "alipay.fund.trans.uni.transfer",
            "biz_scene": "DIRECT_TRANSFER",
        }
        params = {
            "notify_id": notify_id,
            "utc_timestamp": str(int(time.time() * 1000)),
            "msg_method": "alipay.fund.trans.order.changed",
            "app_id": self.app_id,
            "version": "1.1",
            "charset": "utf-8",
            "biz_content": json_bytes(biz).decode(),
        }
        params["sign"] = rsa_sign.sign(self.platform_private, sign_content(params, ("sign", "sign_type")))
        params["sign_type"] = "RSA2"
        body = urlencode(params).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return OutgoingCallback(CHANNEL, payout.order_no, notify_id, payout.notify_url, headers, body)


def _json_object(text: str) -> dict[str, object]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value
