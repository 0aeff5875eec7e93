"""A stand-in for Alibaba Cloud SMS on loopback, for the demo and the tests: it answers ``SendSms`` like the real
service (required parameters, AccessKey, signature version 1.0 recomputed over the received parameters,
timestamp freshness, nonce never reused, phone and template checks, JSON answer with ``Code``) and keeps an
inbox that plays the merchant's phone.

``GET /_sandbox/inbox?phone=&out_id_prefix=&limit=`` lists what a phone received, newest first (the demo page's
SMS box and load scripts read codes there). The inbox lives in memory: it is a phone, not a record.

Run: ``python manage.py sandbox_sms --port 8710`` (``make run`` starts it in demo mode)."""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .sms import ALIYUN_API_VERSION, aliyun_signature, mask_phone

log = logging.getLogger(__name__)

PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
REQUIRED = (
    "AccessKeyId",
    "Action",
    "PhoneNumbers",
    "SignName",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "Signature",
    "TemplateCode",
    "Timestamp",
    "Version",
)
FRESHNESS = timedelta(minutes=15)


class SandboxSms:
    """The receiver's book: credentials it accepts, templates it knows, nonces seen, the inbox."""

    def __init__(self, *, access_key_id: str, access_key_secret: str, templates: dict[str, str]) -> None:
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.templates = templates
        self.inbox: deque[dict[str, Any]] = deque(maxlen=5000)
        self.nonces: dict[str, datetime] = {}
        self.lock = threading.Lock()

    def send_sms(self, method: str, params: dict[str, str], *, now: datetime | None = None) -> tuple[int, dict]:
        now = now or datetime.now(UTC)
        request_id = str(uuid.uuid4()).upper()

        def error(status: int, code: str, message: str) -> tuple[int, dict]:
            return status, {"Code": code, "Message": message, "RequestId": request_id}

        missing = [name for name in REQUIRED if not params.get(name)]
        if missing:
            return error(
                400, "MissingParameter", f"The input parameter {missing[0]} that is mandatory is not supplied."
            )
        if params["Action"] != "SendSms" or params["Version"] != ALIYUN_API_VERSION:
            return error(400, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return error(400, "InvalidParameter", "SignatureMethod or SignatureVersion is not supported.")
        if params["AccessKeyId"] != self.access_key_id:
            return error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        expected = aliyun_signature(params, self.access_key_secret, method=method)
        if not _equal(expected, params["Signature"]):
            return error(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        try:
            sent_at = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return error(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
        if abs(now - sent_at) > FRESHNESS:
            return error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        with self.lock:
            for nonce, seen in list(self.nonces.items()):
                if now - seen > FRESHNESS * 2:
                    del self.nonces[nonce]
            if params["SignatureNonce"] in self.nonces:
                return error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self.nonces[params["SignatureNonce"]] = now
        phone = params["PhoneNumbers"]
        if not PHONE_RE.match(phone):
            return error(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        template = self.templates.get(params["TemplateCode"])
        if template is None:
            return error(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            values = json.loads(params.get("TemplateParam") or "{}")
            text = template.format(sign=params["SignName"], **values)
        except (ValueError, KeyError, TypeError):
            return error(200, "isv.TEMPLATE_PARAMS_ILLEGAL", "模板变量里包含非法关键字")
        biz_id = f"{uuid.uuid4().int % 10**15:015d}^0"
        with self.lock:
            self.inbox.append(
                {
                    "phone": phone,
                    "text": text,
                    "out_id": params.get("OutId", ""),
                    "biz_id": biz_id,
                    "at": now.isoformat(),
                }
            )
        log.info("sandbox SMS delivered to %s (%s)", mask_phone(phone), biz_id)
        return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}

    def messages(self, *, phone: str, out_id_prefix: str = "", limit: int = 20) -> list[dict[str, Any]]:
        with self.lock:
            rows = [m for m in self.inbox if m["phone"] == phone and m["out_id"].startswith(out_id_prefix)]
        return list(reversed(rows))[:limit]


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def make_handler(book: SandboxSms, *, quiet: bool = True) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "sandbox-sms/1"

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            if url.path == "/_sandbox/health":
                self._answer(200, {"ok": True})
            elif url.path == "/_sandbox/inbox":
                limit = int(query.get("limit", "20") or 20) if query.get("limit", "20").isdigit() else 20
                rows = book.messages(
                    phone=query.get("phone", ""), out_id_prefix=query.get("out_id_prefix", ""), limit=limit
                )
                self._answer(200, {"messages": rows})
            elif url.path in ("", "/"):
                status, body = book.send_sms("GET", query)
                self._answer(status, body)
            else:
                self._answer(404, {"Code": "InvalidAction.NotFound", "Message": "not found"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            if url.path not in ("", "/"):
                self._answer(404, {"Code": "InvalidAction.NotFound", "Message": "not found"})
                return
            length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
            raw = self.rfile.read(length).decode("utf-8", "replace")
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            params.update(dict(parse_qsl(raw, keep_blank_values=True)))
            status, body = book.send_sms("POST", params)
            self._answer(status, body)

        def log_message(self, format: str, *args: Any) -> None:
            if not quiet:  # never the query string: it holds the phone number
                log.info("sandbox SMS %s %s", self.command, urlsplit(self.path).path)

    return Handler


def serve(
    *, host: str, port: int, book: SandboxSms, quiet: bool = True
) -> ThreadingHTTPServer:  # pragma: no cover - trivial
    server = ThreadingHTTPServer((host, port), make_handler(book, quiet=quiet))
    server.daemon_threads = True
    return server
