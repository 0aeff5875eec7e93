"""SMS providers: one small class per provider with a tiny common surface (``send``) and errors that say whether
retrying can help.

- ``AliyunSmsProvider`` speaks Alibaba Cloud SMS ``SendSms`` (API version 2017-05-25) over its documented RPC
  protocol: a form-encoded request with the common parameters, signed with signature method HMAC-SHA1, version
  1.0 — StringToSign = ``METHOD & percentEncode("/") & percentEncode(canonicalised query)``, key = AccessKey
  secret + "&", Base64 — and a JSON answer whose ``Code`` is ``OK`` or an error code. The text lives in the
  provider-side template; we send only ``{"code": ...}``. Configured by endpoint, access key, sign name and
  template code (``ALIYUN_SMS_*``), so pointing it at the real service is configuration.
- ``MemorySmsProvider`` keeps what it was asked to send in this process: the test suite and in-process
  simulations read codes from it. Settings refuse it in production.

In the demo (``DEMO_MODE``) the Aliyun provider is pointed at ``risk.sandbox_sms``, a small receiver that checks the
signature like the real service and keeps an inbox that plays the merchant's phone (the demo page's SMS box).

Codes never reach a log line or our database: ``SmsMessage`` keeps a masked text (see ``risk.stepup``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings

log = logging.getLogger(__name__)

ALIYUN_API_VERSION = "2017-05-25"
# Codes after which sending the same message again soon can succeed (the service or its flow control is busy).
ALIYUN_TRANSIENT_CODES = {"isp.SYSTEM_ERROR", "Throttling", "Throttling.User", "ServiceUnavailable"}


class SmsProviderError(Exception):
    """The provider did not take the message. ``permanent``: the same request will never succeed (bad number,
    template, credentials); otherwise a later retry may."""

    def __init__(self, message: str, *, code: str = "", permanent: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.permanent = permanent


@dataclass(frozen=True)
class SmsReceipt:
    provider: str
    message_id: str


class SmsProvider(Protocol):
    name: str

    def send(self, *, phone: str, params: dict[str, str], out_id: str = "") -> SmsReceipt: ...


def mask_phone(phone: str) -> str:
    """138****0001: enough for a person to recognise their number, not enough to text it."""
    digits = phone.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return f"{digits[:3]}****{digits[-4:]}"


# --- Alibaba Cloud SMS -----------------------------------------------------------------------------------
def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the Alibaba Cloud RPC signature defines it: unreserved characters stay, everything
    else is %XX of its UTF-8 bytes (a space is %20, ``*`` is %2A, ``~`` stays)."""
    return quote(value, safe="~")


def aliyun_string_to_sign(params: dict[str, str], *, method: str = "POST") -> str:
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature"
    )
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def aliyun_signature(params: dict[str, str], secret: str, *, method: str = "POST") -> str:
    """Signature version 1.0, HMAC-SHA1 (the ``Signature`` parameter of every RPC request)."""
    digest = hmac.new(f"{secret}&".encode(), aliyun_string_to_sign(params, method=method).encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


def aliyun_timestamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class AliyunSmsProvider:
    endpoint: str
    access_key_id: str
    access_key_secret: str
    sign_name: str
    template_code: str
    region: str = "cn-hangzhou"
    timeout: float = 5.0
    name: str = "aliyun"

    def request_params(self, *, phone: str, params: dict[str, str], out_id: str = "") -> dict[str, str]:
        """The signed parameters of one SendSms call (public so the sandbox receiver's tests can build one)."""
        body = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": phone,
            "RegionId": self.region,
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": str(uuid.uuid4()),
            "SignatureVersion": "1.0",
            "TemplateCode": self.template_code,
            "TemplateParam": json.dumps(params, ensure_ascii=False, separators=(",", ":")),
            "Timestamp": aliyun_timestamp(),
            "Version": ALIYUN_API_VERSION,
        }
        if out_id:
            body["OutId"] = out_id
        body["Signature"] = aliyun_signature(body, self.access_key_secret, method="POST")
        return body

    def send(self, *, phone: str, params: dict[str, str], out_id: str = "") -> SmsReceipt:
        body = self.request_params(phone=phone, params=params, out_id=out_id)
        try:
            response = requests.post(self.endpoint, data=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SmsProviderError(f"SMS provider unreachable: {type(exc).__name__}") from None
        try:
            answer: dict[str, Any] = response.json()
        except ValueError:
            raise SmsProviderError(f"SMS provider answered HTTP {response.status_code} without JSON") from None
        code = str(answer.get("Code", ""))
        if code == "OK":
            return SmsReceipt(self.name, str(answer.get("BizId", "")))
        transient = code in ALIYUN_TRANSIENT_CODES or response.status_code >= 500
        raise SmsProviderError(
            f"SMS provider refused: {code} {answer.get('Message', '')}", code=code, permanent=not transient
        )


# --- in-process outbox -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SentSms:
    phone: str
    params: dict[str, str]
    out_id: str
    at: datetime


@dataclass
class MemorySmsProvider:
    """Keeps the last messages in this process. Delivers nothing: only for tests and in-process simulations."""

    name: str = "memory"
    sent: deque[SentSms] = field(default_factory=lambda: deque(maxlen=2000))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, *, phone: str, params: dict[str, str], out_id: str = "") -> SmsReceipt:
        with self._lock:
            self.sent.append(SentSms(phone, dict(params), out_id, datetime.now(UTC)))
        return SmsReceipt(self.name, f"mem-{uuid.uuid4().hex[:12]}")

    def last(self, *, phone: str | None = None, out_id_prefix: str = "") -> SentSms | None:
        with self._lock:
            for message in reversed(self.sent):
                if (phone is None or message.phone == phone) and message.out_id.startswith(out_id_prefix):
                    return message
        return None

    def clear(self) -> None:
        with self._lock:
            self.sent.clear()


_memory = MemorySmsProvider()


def memory_sms_provider() -> MemorySmsProvider:
    return _memory


def sms_provider() -> SmsProvider:
    """The configured provider (settings are read on every call, so tests can switch them)."""
    if settings.SMS_PROVIDER == "memory":
        return _memory
    if settings.SMS_PROVIDER == "aliyun":
        return AliyunSmsProvider(
            endpoint=settings.ALIYUN_SMS_ENDPOINT,
            access_key_id=settings.ALIYUN_SMS_ACCESS_KEY_ID,
            access_key_secret=settings.ALIYUN_SMS_ACCESS_KEY_SECRET,
            sign_name=settings.ALIYUN_SMS_SIGN_NAME,
            template_code=settings.ALIYUN_SMS_TEMPLATE_CODE,
            region=settings.ALIYUN_SMS_REGION,
        )
    raise SmsProviderError("no SMS provider is configured (SMS_PROVIDER)", permanent=True)


# --- the demo phone ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InboxMessage:
    text: str
    at: str
    out_id: str


def sms_demo_inbox_latest(*, phone: str, out_id_prefix: str) -> InboxMessage | None:
    """What the merchant's phone last received (demo mode only): the in-process outbox, or the sandbox
    receiver's inbox when the Aliyun provider points at it. ``None`` outside demo mode, always."""
    if not settings.DEMO_MODE:
        return None
    if settings.SMS_PROVIDER == "memory":
        sent = _memory.last(phone=phone, out_id_prefix=out_id_prefix)
        if sent is None:
            return None
        return InboxMessage(render_template(sent.params), sent.at.isoformat(), sent.out_id)
    base = settings.ALIYUN_SMS_ENDPOINT
    if urlsplit(base).hostname not in {"127.0.0.1", "localhost", "::1"}:
        return None  # a real provider: the phone is a real phone
    try:
        response = requests.get(
            base.rstrip("/") + "/_sandbox/inbox",
            params={"phone": phone, "out_id_prefix": out_id_prefix, "limit": "1"},
            timeout=2,
        )
        rows = response.json().get("messages", [])
    except (requests.RequestException, ValueError):
        log.warning("sandbox SMS inbox unreachable at %s", base)
        return None
    if not rows:
        return None
    return InboxMessage(str(rows[0]["text"]), str(rows[0]["at"]), str(rows[0].get("out_id", "")))


SMS_TEMPLATE_TEXT = "【{sign}】您的验证码为 {code}，5 分钟内有效，请勿泄露给他人。如非本人操作请忽略。"


def render_template(params: dict[str, str], *, sign: str | None = None) -> str:
    """The text the registered template produces (what the phone shows)."""
    return SMS_TEMPLATE_TEXT.format(sign=sign or settings.ALIYUN_SMS_SIGN_NAME, code=params.get("code", ""))


def masked_text() -> str:
    """What we keep of a sent code: the template with the code masked."""
    return render_template({"code": "******"})
