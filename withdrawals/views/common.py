"""What every merchant page shares: who is asking (merchant, user, client IP, device), the merchant-only
decorator, and the bits of page state several areas show."""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts.models import Merchant, User
from accounts.selectors import kyc_record_get
from config.catalogue import failure_text
from config.errors import DomainError
from risk.sms import InboxMessage, mask_phone, sms_demo_inbox_latest
from withdrawals.models import Status, Withdrawal
from withdrawals.selectors import withdrawal_of_merchant

ViewT = TypeVar("ViewT", bound=Callable[..., HttpResponse])
_DEVICE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


# --- request plumbing -------------------------------------------------------------------------------------
def client_ip(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it, and this IP
    # feeds risk decisions. Behind a proxy, the proxy (or a middleware) must set REMOTE_ADDR.
    ip = request.META.get("REMOTE_ADDR", "") or ""
    persona = _demo_persona(request)
    if persona and ip in LOOPBACK:
        # An address of its own /24 in 100.64.0.0/10, the carriers' shared space (RFC 6598, like a phone's mobile
        # network): never a real public address, and no two demo merchants share a network.
        h = zlib.crc32(persona.encode())
        return f"100.{64 + h % 64}.{(h >> 8) % 256}.{(h >> 16) % 250 + 2}"
    return ip


LOOPBACK = {"127.0.0.1", "::1"}


def _demo_persona(request: HttpRequest) -> str:
    """In demo mode only (``make run``; production refuses to start with it), one browser on this machine plays
    every demo merchant in turn. Risk would rightly see one device and one network shared by several merchants
    (a device farm): so a merchant's requests there are given a device and a network of its own, as if each
    merchant used its own phone at home. Empty outside demo mode, and for anyone not logged in as a merchant."""
    if not settings.DEMO_MODE:
        return ""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or getattr(user, "merchant_id", None) is None:
        return ""
    return str(user.get_username())


def device_id(request: HttpRequest) -> str:
    """The browser's fingerprint from the page script (form field, else the ``dfp`` cookie); without script,
    a hash of the headers a browser always sends, marked so risk knows it is the weaker kind."""
    device = ""
    for candidate in (request.POST.get("device", ""), request.COOKIES.get("dfp", "")):
        if _DEVICE_RE.match(candidate):
            device = candidate
            break
    if not device:
        raw = f"{request.META.get('HTTP_USER_AGENT', '')}|{request.META.get('HTTP_ACCEPT_LANGUAGE', '')}"
        device = "ua-" + hashlib.sha256(raw.encode()).hexdigest()[:32]
    persona = _demo_persona(request)
    return f"{device}-demo-{persona}" if persona else device


def merchant_required(view: ViewT) -> ViewT:
    """Logged in as a merchant user. Staff without a merchant belong in the admin."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if user.merchant_id is None:
            if user.is_staff:
                return redirect("/admin/")
            return render(request, "merchant/no_merchant.html", status=403)
        return view(request, *args, **kwargs)

    return cast(ViewT, wrapper)


def request_merchant(request: HttpRequest) -> Merchant:
    merchant = request_user(request).merchant
    assert merchant is not None  # merchant_required let the request in
    return merchant


def request_user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def own_withdrawal(request: HttpRequest, pk: int) -> Withdrawal:
    """The request's merchant's withdrawal ``pk``, with its payout account; 404 for somebody else's id."""
    withdrawal = withdrawal_of_merchant(merchant_id=request_merchant(request).pk, withdrawal_id=pk)
    if withdrawal is None:
        raise Http404
    return withdrawal


def dev_sms(merchant: Merchant) -> dict[str, Any] | None:
    """Demo mode only: what the merchant's phone last received (the sandbox SMS receiver's inbox), so the demo
    runs in one browser. Outside demo mode there is nothing to show: codes exist only on the phone."""
    if not settings.DEMO_MODE:
        return None
    kyc = kyc_record_get(merchant_id=merchant.pk)
    if kyc is None:
        return None
    # The merchant's own messages only (two merchants may share a phone number).
    message: InboxMessage | None = sms_demo_inbox_latest(phone=kyc.phone, out_id_prefix=f"m{merchant.pk}-")
    if message is None:
        return None
    return {"text": message.text, "at": message.at, "phone": mask_phone(kyc.phone)}


def wait_message(exc: DomainError) -> str:
    wait = exc.details.get("retry_after") if exc.code == "stepup_resend_too_soon" else None
    return f"验证码已发送，请 {wait} 秒后再重新获取" if wait else exc.message


# Final states in which no money reached the payee: the pages show no arrival amount for them.
UNPAID_FINAL_STATES = (Status.REJECTED, Status.FAILED, Status.CANCELLED, Status.REVERSED)


def submitted_message(request: HttpRequest, w: Withdrawal, *, created: bool) -> None:
    """The banner after a withdrawal (or its retry) was submitted: what actually happened to it, never a green
    "申请成功" above a refusal."""
    if not created:
        messages.info(request, "这笔提现已经提交过，无需重复提交")
    elif w.status == Status.REJECTED:
        reason = failure_text(w.failure_code, w.failure_detail)
        messages.error(
            request,
            f"提现未通过审核{f'：{reason}' if reason else ''}。资金已全额退回可提现余额，如有疑问请联系客服。",
        )
    elif w.status == Status.AWAITING_VERIFICATION:
        messages.warning(request, "申请已提交：请在下方完成二次验证，验证通过后即出款")
    elif w.status == Status.PENDING_REVIEW:
        messages.info(request, "申请已提交，正在人工审核，审核通过后自动出款")
    else:
        messages.success(request, "申请成功")
