"""Alipay adapter: alipay.fund.trans.uni.transfer / common.query / bill download, order.changed notifications.

Hand-written on ``cryptography`` rather than on alipay-sdk-python: the SDK's transport cannot reach a server
URL with a port (``WebUtils.get_http_connection`` always connects to port 80, and appending the parsed port
raises ``TypeError``), and its timeouts surface as raw socket errors. The wire protocol is the documented one;
the tests check our signatures against the SDK's own ``get_sign_content`` / ``verify_with_rsa`` helpers.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl, urlencode

from channels.base import (
    AccountKind,
    CallbackAnswer,
    ChannelError,
    ChannelRejected,
    ErrorAction,
    InvalidCallback,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
    StatementLine,
)
from channels.catalogue import lookup
from config.money import fen_to_yuan

from ._common import (
    DEFAULT_CALLBACK_MAX_AGE,
    DEFAULT_TIMEOUT,
    Transport,
    bad_response,
    error_for,
    material,
    parse_statement,
    private_key,
    public_key,
    reason_for,
    rsa_sign,
    rsa_verify,
    setting,
)

PROVIDER = "alipay"
CST = dt.timezone(dt.timedelta(hours=8))
TRANSFER = "alipay.fund.trans.uni.transfer"
QUERY = "alipay.fund.trans.common.query"
BILL = "alipay.data.dataservice.bill.downloadurl.query"
NOTIFY_METHOD = "alipay.fund.trans.order.changed"
STATUS = {
    "SUCCESS": PayoutStatus.SUCCEEDED,
    "DEALING": PayoutStatus.PROCESSING,
    "INIT": PayoutStatus.PROCESSING,
    "WAIT_PAY": PayoutStatus.PROCESSING,
    "FAIL": PayoutStatus.FAILED,
    "CLOSED": PayoutStatus.FAILED,
    "REFUND": PayoutStatus.RETURNED,
}


def sign_content(params: dict[str, str], exclude: tuple[str, ...]) -> bytes:
    """Sorted ``k=v`` pairs of every non-empty parameter not excluded, joined by ``&``."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in exclude and v != "").encode()


def yuan(fen: int) -> str:
    """Alipay's amount: yuan with two decimals, no grouping (config.money, exact)."""
    return fen_to_yuan(fen, grouping=False)


def fen(amount: str) -> int:
    whole, _, cents = amount.partition(".")
    return int(whole) * 100 + int((cents + "00")[:2])


class AlipayAdapter:
    """Config: server_url, app_id, app_private_key | app_private_key_file, alipay_public_key |
    alipay_public_key_file, notify_url, timeout (s), callback_max_age (s), order_title."""

    def __init__(self, code: str, config: dict[str, Any]) -> None:
        self.code = code
        self.server_url = str(setting(config, "server_url"))
        self.app_id = str(setting(config, "app_id"))
        self.app_key = private_key(material(config, "app_private_key"))
        self.alipay_key = public_key(material(config, "alipay_public_key"))
        self.notify_url = str(config.get("notify_url", ""))
        self.order_title = str(config.get("order_title", "提现"))
        self.callback_max_age = int(config.get("callback_max_age", DEFAULT_CALLBACK_MAX_AGE))
        self.transport = Transport(float(config.get("timeout", DEFAULT_TIMEOUT)))

    # --- ChannelAdapter ------------------------------------------------------------------------------------
    def submit(self, request: PayoutRequest) -> PayoutResult:
        payee: dict[str, Any] = {"identity": request.account_number, "name": request.holder_name}
        if request.account_kind == AccountKind.ALIPAY:
            product, payee["identity_type"] = "TRANS_ACCOUNT_NO_PWD", "ALIPAY_LOGON_ID"
        elif request.account_kind == AccountKind.BANK_CARD:
            product, payee["identity_type"] = "TRANS_BANKCARD_NO_PWD", "BANKCARD_ACCOUNT"
            payee["bankcard_ext_info"] = {"account_type": "2", "bank_code": request.bank_code}
        else:
            raise ChannelRejected(
                f"alipay cannot pay a {request.account_kind} account",
                reason_code="account_kind_unsupported",
                action=ErrorAction.REROUTE,
            )
        if request.currency != "CNY":
            raise ChannelRejected(
                "alipay pays CNY only", reason_code="account_kind_unsupported", action=ErrorAction.REROUTE
            )
        biz = {
            "out_biz_no": request.order_no,
            "trans_amount": yuan(request.amount),
            "product_code": product,
            "biz_scene": "DIRECT_TRANSFER",
            "order_title": self.order_title,
            "payee_info": payee,
            "remark": request.remark,
        }
        content = self._call(TRANSFER, biz, notify_url=self.notify_url)
        if content.get("code") != "10000":
            raise error_for(PROVIDER, _code(content), str(content.get("sub_msg", "")))
        return self._result(request.order_no, content, amount=request.amount)

    def query(self, order_no: str) -> PayoutResult:
        biz = {"out_biz_no": order_no, "product_code": "TRANS_ACCOUNT_NO_PWD", "biz_scene": "DIRECT_TRANSFER"}
        content = self._call(QUERY, biz)
        if content.get("code") != "10000":
            if content.get("sub_code") == "ORDER_NOT_EXIST":
                return PayoutResult(order_no=order_no, status=PayoutStatus.NOT_FOUND, provider_code="ORDER_NOT_EXIST")
            raise error_for(PROVIDER, _code(content), str(content.get("sub_msg", "")))
        amount = fen(str(content["trans_amount"])) if content.get("trans_amount") else None
        return self._result(order_no, content, amount=amount)

    @staticmethod
    def callback_answer(*, accepted: bool, outcome: str) -> CallbackAnswer:
        """Alipay stops retrying only on the exact body "success"."""
        del outcome
        if accepted:
            return CallbackAnswer(200, b"success", "text/plain")
        return CallbackAnswer(400, b"fail", "text/plain")

    def parse_callback(self, headers: dict[str, str], body: bytes) -> PayoutResult:
        del headers  # Alipay signs the form fields, not headers
        try:
            params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidCallback(f"alipay notification is not a form: {exc}")
        if params.get("sign_type") != "RSA2" or not rsa_verify(
            self.alipay_key, sign_content(params, ("sign", "sign_type")), params.get("sign", "")
        ):
            raise InvalidCallback("alipay notification signature does not verify")
        if params.get("app_id") != self.app_id or params.get("msg_method") != NOTIFY_METHOD:
            raise InvalidCallback("alipay notification for another app or method")
        sent = params.get("utc_timestamp", "")
        if not sent.isdigit() or abs(time.time() - int(sent) / 1000) > self.callback_max_age:
            raise InvalidCallback("alipay notification timestamp missing or stale")
        try:
            biz = json.loads(params["biz_content"])
            result = self._result(str(biz["out_biz_no"]), biz, amount=fen(str(biz["trans_amount"])))
        except (ValueError, KeyError, TypeError, ChannelError) as exc:
            raise InvalidCallback(f"alipay notification biz_content malformed: {exc!r}")
        return replace(result, raw={**result.raw, "notify_id": params.get("notify_id", "")})

    def fetch_statement(self, date: dt.date) -> list[StatementLine]:
        content = self._call(BILL, {"bill_type": "signcustomer", "bill_date": date.isoformat()})
        if content.get("code") != "10000":
            raise error_for(PROVIDER, _code(content), str(content.get("sub_msg", "")))
        answer = self.transport.send("GET", str(content["bill_download_url"]), {})
        if answer.status != 200:
            raise ChannelRejected(
                f"alipay bill download HTTP {answer.status}",
                reason_code="channel_system_error",
                action=ErrorAction.RETRY,
            )
        return parse_statement(PROVIDER, answer.body)

    # --- protocol ------------------------------------------------------------------------------------------
    def _call(self, method: str, biz: dict[str, Any], notify_url: str = "") -> dict[str, Any]:
        params = {
            "app_id": self.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": dt.datetime.now(CST).strftime("%Y-%m-%d %H:%M:%S"),
            "version": "1.0",
            "notify_url": notify_url,
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        params = {k: v for k, v in params.items() if v != ""}
        params["sign"] = rsa_sign(self.app_key, sign_content(params, ("sign",)))
        headers = {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"}
        answer = self.transport.send("POST", self.server_url, headers, urlencode(params).encode())
        if answer.status != 200:
            raise bad_response(PROVIDER, f"{method}: HTTP {answer.status}")
        return self._verified(method, answer.body)

    def _verified(self, method: str, body: bytes) -> dict[str, Any]:
        """The ``<method>_response`` object, after checking the platform's signature over its exact text."""
        text = body.decode("utf-8", errors="replace")
        key = '"' + method.replace(".", "_") + '_response"'
        start = text.find(key)
        try:
            start = text.index("{", start + len(key)) if start >= 0 else -1
            content, end = json.JSONDecoder().raw_decode(text, start) if start >= 0 else (None, 0)
            signature = json.loads(text).get("sign", "")
        except ValueError:
            raise bad_response(PROVIDER, f"{method}: answer is not the expected JSON")
        if not isinstance(content, dict):
            raise bad_response(PROVIDER, f"{method}: answer has no {key}")
        if rsa_verify(self.alipay_key, text[start:end].encode(), signature):
            return content
        code = _code(content)
        if (
            not signature
            and content.get("code") != "10000"
            and lookup(PROVIDER, code).action == ErrorAction.PAUSE_CHANNEL
        ):
            # Alipay leaves some gateway-level errors unsigned (e.g. our own bad signature). Trusting them
            # only when they pause the channel cannot move money.
            return content
        raise bad_response(PROVIDER, f"{method}: answer signature does not verify")

    def _result(self, order_no: str, content: dict[str, Any], amount: int | None) -> PayoutResult:
        status = STATUS.get(str(content.get("status")))
        if status is None:
            raise bad_response(PROVIDER, f"status {content.get('status')!r} unknown")
        code = str(content.get("error_code") or "")
        if status == PayoutStatus.RETURNED and not code:
            code = "BANK_RETURNED"
        return PayoutResult(
            order_no=order_no,
            status=status,
            channel_reference=str(content.get("order_id", "")),
            reason_code=reason_for(PROVIDER, code) if status in (PayoutStatus.FAILED, PayoutStatus.RETURNED) else "",
            provider_code=code,
            message=str(content.get("fail_reason") or ""),
            amount=amount,
            raw=dict(content),
        )


def _code(content: dict[str, Any]) -> str:
    return str(content.get("sub_code") or content.get("code") or "")
