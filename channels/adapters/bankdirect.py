"""Bank-direct adapter: our HMAC-signed JSON protocol (docs/bankdirect-protocol.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import replace
from typing import Any
from urllib.parse import quote, urlsplit

from channels.base import (
    CallbackAnswer,
    ChannelError,
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
    reason_for,
    setting,
)

PROVIDER = "bankdirect"
STATUS = {
    "PROCESSING": PayoutStatus.PROCESSING,
    "SUCCEEDED": PayoutStatus.SUCCEEDED,
    "FAILED": PayoutStatus.FAILED,
    "RETURNED": PayoutStatus.RETURNED,
}


def canonical(first: str, second: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return f"{first}\n{second}\n{timestamp}\n{nonce}\n".encode() + body


class BankDirectAdapter:
    """Config: base_url, key_id, secret | secret_file, notify_url, timeout (s), callback_max_age (s)."""

    def __init__(self, code: str, config: dict[str, Any]) -> None:
        self.code = code
        self.base_url = str(setting(config, "base_url")).rstrip("/")
        self.key_id = str(setting(config, "key_id"))
        self.secret = material(config, "secret").encode()
        self.notify_url = str(config.get("notify_url", ""))
        self.callback_max_age = int(config.get("callback_max_age", DEFAULT_CALLBACK_MAX_AGE))
        self.transport = Transport(float(config.get("timeout", DEFAULT_TIMEOUT)))

    # --- ChannelAdapter ------------------------------------------------------------------------------------
    def submit(self, request: PayoutRequest) -> PayoutResult:
        body = {
            "order_no": request.order_no,
            "amount": request.amount,
            "currency": request.currency,
            "account_number": request.account_number,
            "account_name": request.holder_name,
            "bank_code": request.bank_code,
            "remark": request.remark,
            "notify_url": self.notify_url,
        }
        answer = self._call("POST", "/payouts", json.dumps(body, ensure_ascii=False).encode())
        return self._payout_result(self._payout_or_raise(answer))

    def query(self, order_no: str) -> PayoutResult:
        answer = self._call("GET", f"/payouts/{quote(order_no, safe='')}")
        if answer.status == 404:
            return PayoutResult(order_no=order_no, status=PayoutStatus.NOT_FOUND)
        return self._payout_result(self._payout_or_raise(answer))

    @staticmethod
    def callback_answer(*, accepted: bool, outcome: str) -> CallbackAnswer:
        """Any 2xx acknowledges (docs/bankdirect-protocol.md). A refusal says nothing of why (signature,
        freshness, body): that is logged on our side, never told to the sender, so a forger learns nothing."""
        if accepted:
            return CallbackAnswer.json(200, {"received": True, "outcome": outcome})
        return CallbackAnswer.json(401, {"error_code": "REJECTED", "error_message": "callback not accepted"})

    def parse_callback(self, headers: dict[str, str], body: bytes) -> PayoutResult:
        h = lower_headers(headers)
        event_id, timestamp, nonce = (
            h.get("x-bd-event-id", ""),
            h.get("x-bd-timestamp", ""),
            h.get("x-bd-nonce", ""),
        )
        if h.get("x-bd-key-id") != self.key_id:
            raise InvalidCallback("bankdirect callback for another key id")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.callback_max_age:
            raise InvalidCallback("bankdirect callback timestamp missing or stale")
        expected = self._sign(canonical("CALLBACK", event_id, timestamp, nonce, body))
        if not hmac.compare_digest(expected, h.get("x-bd-signature", "")):
            raise InvalidCallback("bankdirect callback signature does not verify")
        try:
            data = json.loads(body)
            if data["event_id"] != event_id:
                raise InvalidCallback("bankdirect callback event id differs from its header")
            result = self._payout_result(data["payout"])
        except (ValueError, KeyError, TypeError, ChannelError) as exc:
            raise InvalidCallback(f"bankdirect callback body malformed: {exc!r}")
        return replace(result, raw={**result.raw, "notify_id": event_id})

    def fetch_statement(self, date: dt.date) -> list[StatementLine]:
        answer = self._call("GET", f"/statements/{date.isoformat()}")
        if answer.status != 200:
            raise self._error(answer)
        return parse_statement(PROVIDER, answer.body)

    # --- protocol ------------------------------------------------------------------------------------------
    def _sign(self, message: bytes) -> str:
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def _call(self, method: str, path: str, body: bytes = b"") -> Answer:
        url = self.base_url + path
        split = urlsplit(url)
        signed_path = split.path + (f"?{split.query}" if split.query else "")
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-BD-Key-Id": self.key_id,
            "X-BD-Timestamp": timestamp,
            "X-BD-Nonce": nonce,
            "X-BD-Signature": self._sign(canonical(method, signed_path, timestamp, nonce, body)),
        }
        answer = self.transport.send(method, url, headers, body)
        h = answer.headers
        signature = self._sign(
            canonical("RESPONSE", nonce, h.get("x-bd-timestamp", ""), h.get("x-bd-nonce", ""), answer.body)
        )
        if not hmac.compare_digest(signature, h.get("x-bd-signature", "")):
            raise bad_response(PROVIDER, f"{method} {path}: HTTP {answer.status} answer not signed by the bank")
        return answer

    def _payout_or_raise(self, answer: Answer) -> dict[str, Any]:
        if answer.status != 200:
            raise self._error(answer)
        try:
            return dict(json.loads(answer.body)["payout"])
        except (ValueError, KeyError, TypeError) as exc:
            raise bad_response(PROVIDER, f"unreadable payout answer: {exc!r}")

    def _error(self, answer: Answer) -> Exception:
        try:
            data = json.loads(answer.body)
            code, message = str(data["error_code"]), str(data.get("error_message", ""))
        except (ValueError, KeyError, TypeError):
            return bad_response(PROVIDER, f"HTTP {answer.status} without an error code")
        return error_for(PROVIDER, code, message)

    def _payout_result(self, payout: dict[str, Any]) -> PayoutResult:
        status = STATUS.get(str(payout.get("status")))
        if status is None:
            raise bad_response(PROVIDER, f"payout status {payout.get('status')!r} unknown")
        code = str(payout.get("error_code") or "")
        return PayoutResult(
            order_no=str(payout["order_no"]),
            status=status,
            channel_reference=str(payout.get("payout_id", "")),
            reason_code=reason_for(PROVIDER, code) if status in (PayoutStatus.FAILED, PayoutStatus.RETURNED) else "",
            provider_code=code,
            message=str(payout.get("error_message") or ""),
            amount=int(payout["amount"]) if payout.get("amount") is not None else None,
            raw=dict(payout),
        )
