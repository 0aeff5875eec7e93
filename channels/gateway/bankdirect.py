"""Bank-direct, our own protocol: JSON over HTTP, HMAC-SHA256 both ways. Spec: docs/bankdirect-protocol.md."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
import uuid
from collections.abc import Mapping

from .engine import CST, Dialect, Engine, Outcome, Protocol, Submission
from .keys import GatewayKeys
from .notifier import OutgoingCallback
from .store import Payout
from .web import NonceCache, Request, Response, json_bytes

CHANNEL = "bankdirect"
PREFIX = "/bankdirect/v1"
MAX_SKEW = 300

DIALECT = Dialect(
    channel=CHANNEL,
    codes={
        "busy": "SYSTEM_BUSY",
        "maintenance": "MAINTENANCE",
        "conflict": "ORDER_CONFLICT",
        "invalid_account": "ACCOUNT_INVALID",
        "account_frozen": "ACCOUNT_FROZEN",
        "name_mismatch": "NAME_MISMATCH",
        "returned": "BANK_RETURNED",
        "unclaimed": "UNCLAIMED",
    },
    fail_codes=frozenset({"ACCOUNT_INVALID", "ACCOUNT_FROZEN", "NAME_MISMATCH", "ACCOUNT_CLOSED"}),
    reference_prefix="BD",
)

HTTP_STATUS = {
    "SYSTEM_BUSY": 503,
    "MAINTENANCE": 503,
    "RATE_LIMITED": 429,
    "ORDER_CONFLICT": 409,
    "INVALID_REQUEST": 400,
    "SIGNATURE_INVALID": 401,
    "KEY_UNKNOWN": 401,
    "TIMESTAMP_EXPIRED": 401,
    "NONCE_REUSED": 401,
    "ORDER_NOT_FOUND": 404,
}
MESSAGES = {
    "SYSTEM_BUSY": "system busy, not accepted; retry later under the same order_no",
    "MAINTENANCE": "channel in maintenance, not accepted",
    "RATE_LIMITED": "too many requests",
    "ORDER_CONFLICT": "order_no already used with a different amount or account",
    "BALANCE_INSUFFICIENT": "settlement account balance insufficient",
    "AMOUNT_OVER_LIMIT": "amount over the per-payout limit",
    "DAILY_LIMIT_EXCEEDED": "daily limit reached",
    "UNSUPPORTED_BANK": "payee bank not supported",
    "ACCOUNT_INVALID": "payee account does not exist",
    "ACCOUNT_FROZEN": "payee account is frozen",
    "ACCOUNT_CLOSED": "payee account is closed",
    "NAME_MISMATCH": "holder name does not match the account",
    "BANK_RETURNED": "returned by the payee's bank",
}
STATUS = {
    "processing": "PROCESSING",
    "awaiting_payee": "PROCESSING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "returned": "RETURNED",
}
ORDER_NO = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def canonical(first: str, second: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{first}\n{second}\n{timestamp}\n{nonce}\n".encode() + body


def sign(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, CST).isoformat(timespec="seconds")


def payout_json(p: Payout) -> dict[str, object]:
    return {
        "order_no": p.order_no,
        "payout_id": p.reference,
        "status": STATUS[p.status],
        "amount": p.amount,
        "currency": p.currency,
        "error_code": p.provider_code,
        "error_message": MESSAGES.get(p.provider_code, p.provider_code),
        "created_at": _iso(p.created_at),
        "updated_at": _iso(p.updated_at),
    }


class BankDirect:
    def __init__(self, engine: Engine, keys: GatewayKeys) -> None:
        self.engine = engine
        self.key_id = keys.bankdirect_key_id
        self.secret = keys.bankdirect_secret
        self.nonces = NonceCache()
        engine.register(Protocol(DIALECT, self.build_callback))

    def handle(self, request: Request) -> Response | None:
        if not request.path.startswith(PREFIX + "/"):
            return None
        nonce = request.headers.get("x-bd-nonce", "")
        problem = self._authenticate(request)
        if problem:
            return self._error(problem, nonce)
        rest = request.path[len(PREFIX) :]
        if request.method == "POST" and rest == "/payouts":
            return self._submit(request, nonce)
        match = re.fullmatch(r"/payouts/([^/]+)", rest)
        if request.method == "GET" and match:
            self.engine.sleep_latency(CHANNEL)
            payout = self.engine.lookup(CHANNEL, match.group(1))
            if payout is None:
                return self._error("ORDER_NOT_FOUND", nonce, "no payout under this order_no")
            return self._answer(200, {"result": "OK", "payout": payout_json(payout)}, nonce)
        match = re.fullmatch(r"/statements/(\d{4}-\d{2}-\d{2})", rest)
        if request.method == "GET" and match:
            return self._statement(match.group(1), nonce)
        return self._error("INVALID_REQUEST", nonce, f"no such endpoint: {request.method} {request.path}")

    def _authenticate(self, request: Request) -> str:
        h = request.headers
        if h.get("x-bd-key-id") != self.key_id:
            return "KEY_UNKNOWN"
        timestamp, nonce, signature = (
            h.get("x-bd-timestamp", ""),
            h.get("x-bd-nonce", ""),
            h.get("x-bd-signature", ""),
        )
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW:
            return "TIMESTAMP_EXPIRED"
        expected = sign(self.secret, canonical(request.method, request.raw_path, timestamp, nonce, request.body))
        if not (8 <= len(nonce) <= 64) or not hmac.compare_digest(expected, signature):
            return "SIGNATURE_INVALID"
        if not self.nonces.first_use(nonce):
            return "NONCE_REUSED"
        return ""

    def _submit(self, request: Request, nonce: str) -> Response:
        try:
            data = request.json()
            sub = Submission(
                order_no=str(data["order_no"]),
                amount=int(data["amount"]),
                currency=str(data.get("currency", "CNY")),
                account_kind="bank_card",
                account_number=str(data["account_number"]),
                holder_name=str(data["account_name"]),
                bank_code=str(data.get("bank_code", "")),
                notify_url=str(data.get("notify_url", "")),
            )
        except (ValueError, KeyError, TypeError) as exc:
            return self._error("INVALID_REQUEST", nonce, f"bad payout request: {exc}")
        if not ORDER_NO.match(sub.order_no) or sub.amount <= 0 or sub.currency != "CNY" or not sub.account_number:
            return self._error("INVALID_REQUEST", nonce, "order_no, amount (fen > 0), currency CNY, account required")
        return self._outcome(self.engine.submit(CHANNEL, sub), nonce)

    def _outcome(self, outcome: Outcome, nonce: str) -> Response:
        if outcome.kind in ("withhold", "drop"):
            return Response.withheld(outcome.hang_seconds)
        if outcome.kind == "refuse":
            return self._error(outcome.code, nonce)
        assert outcome.payout is not None
        return self._answer(200, {"result": "OK", "payout": payout_json(outcome.payout)}, nonce)

    def _statement(self, date: str, nonce: str) -> Response:
        content = self.engine.statement_csv(CHANNEL, date)
        return self._signed(200, content, nonce, "text/csv; charset=utf-8")

    def _error(self, code: str, nonce: str, message: str = "") -> Response:
        body = {
            "result": "REJECTED",
            "error_code": code,
            "error_message": message or MESSAGES.get(code, code),
        }
        if code == "ORDER_NOT_FOUND":
            body["result"] = "NOT_FOUND"
        return self._answer(HTTP_STATUS.get(code, 422), body, nonce)

    def _answer(self, status: int, data: Mapping[str, object], nonce: str) -> Response:
        return self._signed(status, json_bytes(data), nonce, "application/json; charset=utf-8")

    def _signed(self, status: int, body: bytes, request_nonce: str, content_type: str) -> Response:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(12)
        signature = sign(self.secret, canonical("RESPONSE", request_nonce, timestamp, nonce, body))
        headers = {
            "Content-Type": content_type,
            "X-BD-Timestamp": timestamp,
            "X-BD-Nonce": nonce,
            "X-BD-Signature": signature,
        }
        return Response(status, body, headers)

    def build_callback(self, payout: Payout) -> OutgoingCallback:
        event_id = "evt_" + uuid.uuid4().hex
        body = json_bytes({"event_id": event_id, "event": "payout.status_changed", "payout": payout_json(payout)})
        timestamp, nonce = str(int(time.time())), secrets.token_hex(12)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-BD-Key-Id": self.key_id,
            "X-BD-Event-Id": event_id,
            "X-BD-Timestamp": timestamp,
            "X-BD-Nonce": nonce,
            "X-BD-Signature": sign(self.secret, canonical("CALLBACK", event_id, timestamp, nonce, body)),
        }
        return OutgoingCallback(CHANNEL, payout.order_no, event_id, payout.notify_url, headers, body)
