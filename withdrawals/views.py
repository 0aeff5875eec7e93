"""Merchant-facing pages. Thin: parse the request, call a service, render; DomainError.message is what the
merchant reads when a service says no."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import redirect_to_login
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import KycRecord, Merchant, Notification, PayoutAccount, User
from accounts.services import login_record, names_match, payout_account_add, payout_account_check_receivable
from config.catalogue import failure_describe, failure_text
from config.errors import DomainError, error_message
from config.money import fen_to_yuan
from config.totp import (
    totp_current_factor_verify,
    totp_device_confirmed,
    totp_enrol_confirm,
    totp_enrol_start,
    totp_qr_svg,
)
from risk.models import StepUpChallenge
from risk.sms import InboxMessage, mask_phone, sms_demo_inbox_latest
from risk.stepup import (
    face_check_available,
    face_provider,
    face_sandbox_controls_enabled,
    stepup_issue,
    stepup_sms_retry_after,
    stepup_verify,
    totp_enrol_subject,
)
from wallets.selectors import wallet_balances

from .fees import ARRIVAL_TEXT, policy_current
from .forms import (
    BANK_NAMES,
    MerchantAuthenticationForm,
    PayoutAccountForm,
    VerifyCodeForm,
    WithdrawForm,
    parse_yuan,
)
from .models import CANCELLABLE_STATES, FINAL_STATES, HOLDING_STATES, RETRYABLE_STATES, Speed, Status, Withdrawal
from .services import (
    withdrawal_cancel,
    withdrawal_face_complete,
    withdrawal_face_start,
    withdrawal_limits,
    withdrawal_quote,
    withdrawal_resend_code,
    withdrawal_retry,
    withdrawal_stepup_method,
    withdrawal_submit,
    withdrawal_verify,
)

DRAFT_SALT = "withdrawals.web.draft"
DRAFT_MAX_AGE_SECONDS = 30 * 60
_DEVICE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


# --- request plumbing -------------------------------------------------------------------------------------
def client_ip(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it, and this IP
    # feeds risk decisions. Behind a proxy, the proxy (or a middleware) must set REMOTE_ADDR.
    return request.META.get("REMOTE_ADDR", "") or ""


def device_id(request: HttpRequest) -> str:
    """The browser's fingerprint from the page script (form field, else the ``dfp`` cookie); without script,
    a hash of the headers a browser always sends, marked so risk knows it is the weaker kind."""
    for candidate in (request.POST.get("device", ""), request.COOKIES.get("dfp", "")):
        if _DEVICE_RE.match(candidate):
            return candidate
    raw = f"{request.META.get('HTTP_USER_AGENT', '')}|{request.META.get('HTTP_ACCEPT_LANGUAGE', '')}"
    return "ua-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def merchant_required(view):  # type: ignore[no-untyped-def]
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

    return wrapper


def _merchant(request: HttpRequest) -> Merchant:
    merchant = _actor(request).merchant
    assert merchant is not None  # merchant_required let the request in
    return merchant


def _actor(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _own_withdrawal(request: HttpRequest, pk: int) -> Withdrawal:
    return get_object_or_404(Withdrawal.objects.select_related("payout_account"), pk=pk, merchant=_merchant(request))


# --- login / logout ---------------------------------------------------------------------------------------
class MerchantLoginView(auth_views.LoginView):
    template_name = "merchant/login.html"
    authentication_form = MerchantAuthenticationForm
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        login_record(merchant=_merchant(self.request), ip=client_ip(self.request), device=device_id(self.request))
        return response


class MerchantLogoutView(auth_views.LogoutView):
    next_page = "/login/"


# --- dashboard --------------------------------------------------------------------------------------------
@merchant_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    merchant = _merchant(request)
    return render(
        request,
        "merchant/dashboard.html",
        {
            "merchant": merchant,
            "balances": wallet_balances(merchant_id=merchant.pk),
            "recent": merchant.withdrawals.select_related("payout_account")[:5],
            "unread": merchant.notifications.filter(read_at__isnull=True)[:5],
            "limits": withdrawal_limits(merchant=merchant),
            "kyc": KycRecord.objects.filter(merchant=merchant).first(),
            "totp_enrolled": totp_device_confirmed(user_ids=[_actor(request).pk]) is not None,
            "nav": "home",
        },
    )


# --- withdraw: step 1 (form) and step 2 (confirm) ---------------------------------------------------------
@dataclass
class AccountOption:
    account: PayoutAccount
    usable: bool
    reason: str


def _account_options(merchant: Merchant) -> list[AccountOption]:
    options = []
    for account in merchant.payout_accounts.order_by("-is_default", "-created_at"):
        try:
            payout_account_check_receivable(account=account, merchant=merchant)
        except DomainError as exc:
            options.append(AccountOption(account, False, exc.message))
        else:
            options.append(AccountOption(account, True, ""))
    return options


def _fee_rule(speed: str) -> str:
    policy = policy_current()
    prefix = {Speed.INSTANT: "instant", Speed.STANDARD: "standard", Speed.T1: "t1"}[Speed(speed)]
    fixed, rate = getattr(policy, f"{prefix}_fee_fixed"), getattr(policy, f"{prefix}_fee_rate_bp")
    low, high = getattr(policy, f"{prefix}_fee_min"), getattr(policy, f"{prefix}_fee_max")
    parts = [f"{fen_to_yuan(fixed)} 元"] if fixed else []
    if rate:
        parts.append(f"{rate / 100:g}%")
    return f"{' + '.join(parts) or '免费'}（最低 {fen_to_yuan(low)}，最高 {fen_to_yuan(high)} 元）"


def _speed_options(amount: int | None, account_kind: str = PayoutAccount.Kind.BANK_CARD) -> list[dict[str, Any]]:
    rows = []
    for speed in Speed:
        fee = None
        if amount:
            try:
                fee = withdrawal_quote(amount=amount, speed=speed.value, account_kind=account_kind).fee
            except DomainError:
                fee = None
        rows.append(
            {
                "value": speed.value,
                "label": speed.label,
                "arrival": ARRIVAL_TEXT[speed][0],
                "rule": _fee_rule(speed.value),
                "fee": fee,
            }
        )
    return rows


def _withdraw_form_page(
    request: HttpRequest,
    form: WithdrawForm,
    options: list[AccountOption],
    amount: int | None,
    status: int = 200,
) -> HttpResponse:
    merchant = _merchant(request)
    return render(
        request,
        "merchant/withdraw.html",
        {
            "form": form,
            "options": options,
            "has_usable": any(o.usable for o in options),
            "speeds": _speed_options(amount),
            "balances": wallet_balances(merchant_id=merchant.pk),
            "selected_account": str(form["payout_account"].value() or ""),
            "selected_speed": str(form["speed"].value() or Speed.STANDARD),
            "nav": "withdraw",
        },
        status=status,
    )


@merchant_required
@require_http_methods(["GET", "POST"])
def withdraw_start(request: HttpRequest) -> HttpResponse:
    merchant = _merchant(request)
    options = _account_options(merchant)
    usable = [o.account for o in options if o.usable]
    if request.method == "GET":
        # "返回修改" comes back here with the previous choices in the query string.
        initial: dict[str, Any] = {
            "payout_account": usable[0].pk if usable else None,
            "speed": Speed.STANDARD,
        }
        amount = None
        try:
            if request.GET.get("amount"):
                amount = parse_yuan(request.GET["amount"])
                initial["amount"] = fen_to_yuan(amount, grouping=False)
        except ValidationError:  # a hand-edited query string: just start empty
            amount = None
        if request.GET.get("speed") in Speed.values:
            initial["speed"] = request.GET["speed"]
        if request.GET.get("account", "").isdigit() and int(request.GET["account"]) in {a.pk for a in usable}:
            initial["payout_account"] = int(request.GET["account"])
        return _withdraw_form_page(request, WithdrawForm(initial=initial, accounts=usable), options, amount)

    form = WithdrawForm(request.POST, accounts=usable)
    if not form.is_valid():
        amount = form.cleaned_data.get("amount")
        return _withdraw_form_page(request, form, options, amount, status=200)
    amount, speed = form.cleaned_data["amount"], form.cleaned_data["speed"]
    account = next(a for a in usable if a.pk == form.cleaned_data["payout_account"])
    # Early, friendly answers to the two mistakes people make most; withdrawal_submit re-checks everything.
    if amount > wallet_balances(merchant_id=merchant.pk).available:
        form.add_error("amount", error_message("insufficient_funds"))
    else:
        try:
            quote = withdrawal_quote(amount=amount, speed=speed, account_kind=account.kind)
            if quote.net_amount <= 0:
                form.add_error("amount", error_message("amount_not_above_fee"))
        except DomainError as exc:
            form.add_error("amount", exc.message)
    if form.errors:
        return _withdraw_form_page(request, form, options, amount)
    # The idempotency key is born here, once per filled-in form: refreshing or double-clicking the
    # confirm page reuses it, so it can never create a second withdrawal.
    draft = {"m": merchant.pk, "a": amount, "s": speed, "p": account.pk, "k": f"web-{uuid.uuid4().hex}"}
    token = signing.dumps(draft, salt=DRAFT_SALT, compress=True)
    return redirect(f"{reverse('merchant:withdraw_confirm')}?d={token}")


def _load_draft(request: HttpRequest, token: str) -> dict[str, Any] | None:
    try:
        draft = signing.loads(token, salt=DRAFT_SALT, max_age=DRAFT_MAX_AGE_SECONDS)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if draft.get("m") != _merchant(request).pk:
        return None
    return draft


def _confirm_page(
    request: HttpRequest, token: str, draft: dict[str, Any], *, error: str = "", status: int = 200
) -> HttpResponse:
    merchant = _merchant(request)
    account = get_object_or_404(PayoutAccount, pk=draft["p"], merchant=merchant)
    quote = None
    try:
        quote = withdrawal_quote(amount=draft["a"], speed=draft["s"], account_kind=account.kind)
    except DomainError as exc:
        error = error or exc.message
    back = (
        f"{reverse('merchant:withdraw')}?amount={fen_to_yuan(draft['a'], grouping=False)}"
        f"&speed={draft['s']}&account={account.pk}"
    )
    return render(
        request,
        "merchant/withdraw_confirm.html",
        {
            "token": token,
            "draft": draft,
            "account": account,
            "quote": quote,
            "error": error,
            "speed_label": Speed(draft["s"]).label,
            "bank_name": BANK_NAMES.get(account.bank_code, account.bank_code),
            "back_url": back,
            "nav": "withdraw",
        },
        status=status,
    )


@merchant_required
@require_http_methods(["GET", "POST"])
def withdraw_confirm(request: HttpRequest) -> HttpResponse:
    token = request.POST.get("d") or request.GET.get("d") or ""
    draft = _load_draft(request, token)
    if draft is None:
        messages.error(request, "确认页已过期，请重新填写提现信息")
        return redirect("merchant:withdraw")
    if request.method == "GET":
        return _confirm_page(request, token, draft)

    try:
        expected_fee = int(request.POST.get("expected_fee", ""))
    except ValueError:
        return _confirm_page(request, token, draft, error=error_message("invalid_request"))
    if request.POST.get("idempotency_key") != draft["k"]:
        return _confirm_page(request, token, draft, error=error_message("invalid_request"))
    try:
        result = withdrawal_submit(
            merchant_id=draft["m"],
            payout_account_id=draft["p"],
            amount=draft["a"],
            speed=draft["s"],
            idempotency_key=draft["k"],
            expected_fee=expected_fee,
            actor=_actor(request),
            source="web",
            ip=client_ip(request),
            device=device_id(request),
        )
    except DomainError as exc:
        # quote_expired: the page is rendered again with the new quote and its fee as expected_fee.
        return _confirm_page(request, token, draft, error=exc.message)
    if result.created:
        messages.success(request, "申请成功")
    else:
        messages.info(request, "这笔提现已经提交过，无需重复提交")
    return redirect("merchant:withdrawal_detail", pk=result.withdrawal.pk)


@merchant_required
@require_GET
def withdraw_quote(request: HttpRequest) -> JsonResponse:
    """Fees of every speed for the amount being typed (the step-1 page updates its labels from this)."""
    try:
        amount = parse_yuan(request.GET.get("amount", ""))
    except ValidationError as exc:
        return JsonResponse({"ok": False, "error": exc.messages[0]})
    speeds = {}
    for speed in Speed:
        try:
            quote = withdrawal_quote(amount=amount, speed=speed.value)
        except DomainError as exc:
            return JsonResponse({"ok": False, "error": exc.message})
        speeds[speed.value] = {
            "fee": fen_to_yuan(quote.fee),
            "net": fen_to_yuan(max(quote.net_amount, 0)),
            "covers_fee": quote.net_amount > 0,
        }
    return JsonResponse({"ok": True, "speeds": speeds})


# --- withdrawals list and detail --------------------------------------------------------------------------
FILTERS: dict[str, tuple[str, list[str] | None]] = {
    "": ("全部", None),
    "active": ("处理中", [s.value for s in HOLDING_STATES]),
    "paid": ("已到账", [Status.PAID.value]),
    "failed": ("失败 / 退票", [Status.FAILED.value, Status.REVERSED.value]),
    "closed": ("已拒绝 / 已取消", [Status.REJECTED.value, Status.CANCELLED.value]),
}


@merchant_required
@require_GET
def withdrawal_list(request: HttpRequest) -> HttpResponse:
    current = request.GET.get("status", "")
    if current not in FILTERS:
        current = ""
    qs = _merchant(request).withdrawals.select_related("payout_account")
    statuses = FILTERS[current][1]
    if statuses is not None:
        qs = qs.filter(status__in=statuses)
    page = Paginator(qs, 20).get_page(request.GET.get("page"))
    return render(
        request,
        "merchant/withdrawal_list.html",
        {
            "page": page,
            "filters": [(k, v[0]) for k, v in FILTERS.items()],
            "current": current,
            "nav": "list",
        },
    )


STEPS = ["审核中", "支付中", "已到账"]


def _progress(w: Withdrawal, events: list[Any]) -> list[dict[str, Any]]:
    """The three-step stepper, derived from the status and the event times."""
    reached: dict[str, datetime] = {}
    for e in events:
        reached.setdefault(e.to_status, e.created_at)
    times = [w.created_at, reached.get(Status.APPROVED), w.paid_at or reached.get(Status.PAID)]
    labels = list(STEPS)
    status = w.status
    if status in (Status.SUBMITTED, Status.PENDING_REVIEW, Status.AWAITING_VERIFICATION):
        at, outcome = 0, "current"
        if status == Status.AWAITING_VERIFICATION:
            labels[0] = "待短信验证"
    elif status in (Status.APPROVED, Status.PROCESSING, Status.OUTCOME_UNKNOWN):
        at, outcome = 1, "current"
        labels[1] = {Status.APPROVED: "待出款", Status.OUTCOME_UNKNOWN: "支付中（结果确认中）"}.get(status, "支付中")
    elif status == Status.PAID:
        at, outcome = 2, "done"
    elif status == Status.FAILED:
        at, outcome, labels[1] = 1, "error", "支付失败"
    elif status == Status.REJECTED:
        at, outcome, labels[0] = 0, "error", "未通过审核"
    elif status == Status.CANCELLED:
        cancelled_from = next((e.from_status for e in reversed(events) if e.to_status == Status.CANCELLED), "")
        at = 1 if cancelled_from == Status.APPROVED else 0
        outcome, labels[at] = "error", "已取消"
    else:  # reversed: it was paid, then the bank sent it back
        at, outcome, labels[2] = 2, "error", "银行退票"
    steps = []
    for i, label in enumerate(labels):
        if i < at:
            state = "done"
        elif i == at:
            state = outcome
        else:
            state = "todo"
        time = times[i] if state == "done" or i == 0 else None
        if state == "error" and i > 0:
            time = w.state_changed_at
        steps.append({"label": label, "state": state, "time": time, "n": i + 1})
    return steps


def _timeline(w: Withdrawal) -> list[dict[str, Any]]:
    rows = []
    for e in w.events.order_by("created_at", "id"):
        label = Status(e.to_status).label if e.to_status in Status.values else e.to_status
        rows.append({"time": e.created_at, "status": e.to_status, "label": label, "reason": e.reason})
    return rows


def _progress_context(w: Withdrawal) -> dict[str, Any]:
    events = list(w.events.order_by("created_at", "id"))
    return {
        "w": w,
        "steps": _progress(w, events),
        "timeline": _timeline(w),
        "failure": failure_text(w.failure_code, w.failure_detail),
    }


def _dev_sms(merchant: Merchant) -> dict[str, Any] | None:
    """Demo mode only: what the merchant's phone last received (the sandbox SMS receiver's inbox), so the demo
    runs in one browser. Outside demo mode there is nothing to show: codes exist only on the phone."""
    if not settings.DEMO_MODE:
        return None
    kyc = KycRecord.objects.filter(merchant=merchant).first()
    if kyc is None:
        return None
    # The merchant's own messages only (two merchants may share a phone number).
    message: InboxMessage | None = sms_demo_inbox_latest(phone=kyc.phone, out_id_prefix=f"m{merchant.pk}-")
    if message is None:
        return None
    return {"text": message.text, "at": message.at, "phone": mask_phone(kyc.phone)}


def _retry_default(w: Withdrawal, usable: list[PayoutAccount]) -> int | None:
    """The account a retry preselects: another one when the catalogue says the payee account is the problem."""
    others = [a for a in usable if a.pk != w.payout_account_id]
    same = [a for a in usable if a.pk == w.payout_account_id]
    failure = failure_describe(w.failure_code, w.failure_detail)
    if failure is not None and failure.suggests_another_account and others:
        return next((a.pk for a in others if a.is_default), others[0].pk)
    preferred = same + others
    return preferred[0].pk if preferred else None


@merchant_required
@require_GET
def withdrawal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    w = _own_withdrawal(request, pk)
    merchant = _merchant(request)
    awaiting = w.status == Status.AWAITING_VERIFICATION
    method = withdrawal_stepup_method(withdrawal_id=w.pk) if awaiting else ""
    ctx: dict[str, Any] = {
        **_progress_context(w),
        "nav": "list",
        "cancellable": w.status in CANCELLABLE_STATES,
        "verify_form": VerifyCodeForm() if awaiting and method != StepUpChallenge.Method.FACE else None,
        "stepup_method": method,
        "face_session": _face_session(w) if method == StepUpChallenge.Method.FACE else None,
        "face_available": awaiting and face_check_available(),
        "face_sandbox": face_sandbox_controls_enabled(),
        "dev_sms": _dev_sms(merchant) if awaiting and method == StepUpChallenge.Method.SMS else None,
        "resend_wait": stepup_sms_retry_after(subject=f"withdrawal:{w.pk}") if awaiting else 0,
        "speed_label": Speed(w.speed).label,
    }
    retried_by = Withdrawal.objects.filter(retry_of=w).only("pk", "order_no", "status").first()
    ctx["retried_by"] = retried_by
    if w.status in RETRYABLE_STATES and retried_by is None:
        options = _account_options(merchant)
        usable = [o.account for o in options if o.usable]
        retry_quote = None
        try:
            retry_quote = withdrawal_quote(amount=w.amount, speed=w.speed, account_kind=w.payout_account.kind)
        except DomainError:
            retry_quote = None
        ctx.update(
            {
                "retry_accounts": usable,
                "retry_default": _retry_default(w, usable),
                "retry_quote": retry_quote,
                "retry_key": f"web-retry-{uuid.uuid4().hex}",
            }
        )
    return render(request, "merchant/withdrawal_detail.html", ctx)


@merchant_required
@require_GET
def withdrawal_progress(request: HttpRequest, pk: int) -> JsonResponse:
    """What the detail page polls while the withdrawal is not final."""
    w = _own_withdrawal(request, pk)
    html = render_to_string("merchant/_progress.html", _progress_context(w), request=request)
    return JsonResponse(
        {
            "status": w.status,
            "status_label": w.get_status_display(),
            "final": w.status in FINAL_STATES,
            "html": html,
        },
        headers={"Cache-Control": "no-store"},
    )


def _post_action(request: HttpRequest, pk: int, action: Any, success: str) -> HttpResponse:
    _own_withdrawal(request, pk)  # 404 before anything else for somebody else's id
    try:
        action()
    except DomainError as exc:
        if exc.code == "not_found":
            raise Http404
        messages.error(request, exc.message)
    else:
        messages.success(request, success)
    return redirect("merchant:withdrawal_detail", pk=pk)


@merchant_required
@require_POST
def withdrawal_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = _merchant(request)
    return _post_action(
        request,
        pk,
        lambda: withdrawal_cancel(withdrawal_id=pk, merchant_id=merchant.pk, actor=_actor(request)),
        "已取消，资金已退回可提现余额",
    )


@merchant_required
@require_POST
def withdrawal_verify_view(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = _merchant(request)
    _own_withdrawal(request, pk)
    form = VerifyCodeForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors["code"].as_text().removeprefix("* "))
        return redirect("merchant:withdrawal_detail", pk=pk)
    code = form.cleaned_data["code"].strip()
    return _post_action(
        request,
        pk,
        lambda: withdrawal_verify(withdrawal_id=pk, merchant_id=merchant.pk, code=code, actor=_actor(request)),
        "验证成功，正在为您出款",
    )


def _face_session(w: Withdrawal) -> str:
    challenge = StepUpChallenge.objects.filter(subject=f"withdrawal:{w.pk}").order_by("-created_at").first()
    return challenge.destination if challenge is not None else ""


@merchant_required
@require_POST
def withdrawal_face_start_view(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = _merchant(request)
    return _post_action(
        request,
        pk,
        lambda: withdrawal_face_start(withdrawal_id=pk, merchant_id=merchant.pk),
        "请按提示完成人脸核验",
    )


@merchant_required
@require_POST
def withdrawal_face_complete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """The face check page came back. In demo mode only, the page also plays the merchant's capture (pass /
    fail) at the sandbox provider; the result is always asked of the provider, never taken from the browser."""
    merchant = _merchant(request)
    w = _own_withdrawal(request, pk)
    sandbox = request.POST.get("sandbox")
    if sandbox in ("pass", "fail") and face_sandbox_controls_enabled():
        face_provider().sandbox_capture(session_id=_face_session(w), passed=sandbox == "pass")
    return _post_action(
        request,
        pk,
        lambda: withdrawal_face_complete(withdrawal_id=pk, merchant_id=merchant.pk, actor=_actor(request)),
        "人脸核验通过，正在为您出款",
    )


# --- security: TOTP authenticator enrolment ---------------------------------------------------------------
TOTP_PENDING_KEY = "_totp_pending_device"
TOTP_PENDING_SECONDS = 10 * 60


def _pending_totp_device(request: HttpRequest, user: User):  # type: ignore[no-untyped-def]
    """The device this session was shown a key for, after re-authenticating (10 minutes)."""
    pending = request.session.get(TOTP_PENDING_KEY)
    if not isinstance(pending, dict) or timezone.now().timestamp() - float(pending.get("at", 0)) > TOTP_PENDING_SECONDS:
        return None
    return TOTPDevice.objects.filter(user=user, confirmed=False, pk=int(pending.get("id", 0))).first()


def _totp_reauthenticate(request: HttpRequest, user: User, *, enrolled: bool) -> str:
    """Password and the current second factor (the authenticator being replaced, else an SMS code to the KYC
    phone). A wrong password is a failed login for the lockout. Returns an error message, '' when both hold."""
    if authenticate(request, username=user.get_username(), password=request.POST.get("password", "")) is None:
        return error_message("reauthentication_failed")
    code = request.POST.get("current_code", "").strip()
    try:
        if enrolled:
            totp_current_factor_verify(user=user, code=code)
        else:
            stepup_verify(subject=totp_enrol_subject(user_id=user.pk), code=code)
    except DomainError as exc:
        return exc.message if exc.code != "verification_failed" else error_message("reauthentication_failed")
    return ""


@merchant_required
@require_http_methods(["GET", "POST"])
def security_totp(request: HttpRequest) -> HttpResponse:
    """Bind or replace the authenticator. A stolen session is not enough: the page shows a key only after the
    password and the current factor, the key is new each time, and only this session can confirm it."""
    user = _actor(request)
    merchant = _merchant(request)
    enrolled = totp_device_confirmed(user_ids=[user.pk]) is not None
    pending = _pending_totp_device(request, user)
    error = ""
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action == "send_code" and not enrolled:
        kyc = KycRecord.objects.filter(merchant=merchant).first()
        try:
            if kyc is None:
                raise DomainError("kyc_required")
            stepup_issue(subject=totp_enrol_subject(user_id=user.pk), merchant_id=merchant.pk, phone=kyc.phone)
        except DomainError as exc:
            error = _wait_message(exc)
        else:
            messages.success(request, "验证码已发送到您实名认证的手机")
            return redirect("merchant:security_totp")
    elif action == "reauth":
        error = _totp_reauthenticate(request, user, enrolled=enrolled)
        if getattr(request, "axes_locked_out", False):
            logout(request)  # AxesMiddleware answers with the lockout page
            return redirect("merchant:login")
        if not error:
            pending = totp_enrol_start(user=user)
            request.session[TOTP_PENDING_KEY] = {"id": pending.pk, "at": timezone.now().timestamp()}
    elif action == "confirm":
        form = VerifyCodeForm(request.POST)
        if pending is None:
            error = "请先验证登录密码和当前验证码"
        elif not form.is_valid():
            error = form.errors["code"].as_text().removeprefix("* ")
        else:
            try:
                totp_enrol_confirm(user=user, code=form.cleaned_data["code"], device_id=pending.pk)
            except DomainError as exc:
                error = exc.message
            else:
                request.session.pop(TOTP_PENDING_KEY, None)
                messages.success(request, "身份验证器已绑定，之后需要验证的提现将使用动态口令")
                return redirect("merchant:security_totp")
    kyc = KycRecord.objects.filter(merchant=merchant).first()
    return render(
        request,
        "merchant/security_totp.html",
        {
            "enrolled": enrolled,
            "pending": pending is not None,
            "qr_svg": totp_qr_svg(pending) if pending is not None else "",
            "error": error,
            "phone_masked": mask_phone(kyc.phone) if kyc else "",
            "dev_sms": _dev_sms(merchant) if not enrolled and pending is None else None,
            "nav": "security",
        },
        status=400 if error else 200,
    )


def _wait_message(exc: DomainError) -> str:
    wait = exc.details.get("retry_after") if exc.code == "stepup_resend_too_soon" else None
    return f"验证码已发送，请 {wait} 秒后再重新获取" if wait else exc.message


@merchant_required
@require_POST
def withdrawal_resend_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A new code, at most once a minute and a few times a day (risk.stepup); a resend gives no new guesses."""
    merchant = _merchant(request)
    _own_withdrawal(request, pk)
    try:
        withdrawal_resend_code(withdrawal_id=pk, merchant_id=merchant.pk)
    except DomainError as exc:
        if exc.code == "not_found":
            raise Http404
        messages.error(request, _wait_message(exc))
    else:
        messages.success(request, "验证码已重新发送")
    return redirect("merchant:withdrawal_detail", pk=pk)


@merchant_required
@require_POST
def withdrawal_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    """One click: a new withdrawal with the same amount and speed, to the chosen account, under a new key
    (rendered with the page, so a double click still makes only one)."""
    old = _own_withdrawal(request, pk)
    key = request.POST.get("idempotency_key", "")
    account_id = request.POST.get("payout_account", "")
    expected_fee = request.POST.get("expected_fee", "")
    if not (key.startswith("web-retry-") and account_id.isdigit() and expected_fee.isdigit()):
        messages.error(request, error_message("invalid_request"))
        return redirect("merchant:withdrawal_detail", pk=pk)
    try:
        result = withdrawal_retry(
            withdrawal_id=old.pk,
            merchant_id=old.merchant_id,
            payout_account_id=int(account_id),
            idempotency_key=key,
            expected_fee=int(expected_fee),
            actor=_actor(request),
            source="web",
            ip=client_ip(request),
            device=device_id(request),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        if exc.code == "already_retried":
            return redirect("merchant:withdrawal_detail", pk=exc.details["retry"])
        return redirect("merchant:withdrawal_detail", pk=pk)
    messages.success(request, "申请成功" if result.created else "这笔提现已经提交过，无需重复提交")
    return redirect("merchant:withdrawal_detail", pk=result.withdrawal.pk)


# --- payout accounts --------------------------------------------------------------------------------------
@merchant_required
@require_http_methods(["GET", "POST"])
def payout_accounts(request: HttpRequest) -> HttpResponse:
    merchant = _merchant(request)
    kyc = KycRecord.objects.filter(merchant=merchant).first()
    if request.method == "POST":
        form = PayoutAccountForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                account = payout_account_add(
                    merchant=merchant,
                    account_number=data["account_number"],
                    holder_name=data["holder_name"],
                    bank_code=data["bank_code"],
                    make_default=data["make_default"],
                    ip=client_ip(request),
                    device=device_id(request),
                )
            except DomainError as exc:
                field = "account_number" if exc.code == "invalid_card_number" else None
                form.add_error(field, exc.message)
            else:
                messages.success(request, f"已添加银行卡 {account.masked_number}")
                if kyc is not None and not names_match(account.holder_name, kyc.real_name):
                    messages.warning(request, error_message("card_name_mismatch") + "，该卡不能用于提现")
                return redirect("merchant:accounts")
    else:
        form = PayoutAccountForm(initial={"holder_name": kyc.real_name if kyc else ""})
    options = _account_options(merchant)
    for option in options:
        option.bank_name = BANK_NAMES.get(option.account.bank_code, option.account.bank_code)  # type: ignore[attr-defined]
    return render(
        request,
        "merchant/accounts.html",
        {
            "options": options,
            "form": form,
            "kyc": kyc,
            "nav": "accounts",
        },
    )


@merchant_required
@require_POST
def payout_account_set_default(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = _merchant(request)
    account = get_object_or_404(PayoutAccount, pk=pk, merchant=merchant)
    # accounts.services has no "set default" yet (reported); until it does, the same two updates
    # payout_account_add makes, without a fake "card bound" risk event.
    with transaction.atomic():
        Merchant.objects.select_for_update().get(pk=merchant.pk)
        merchant.payout_accounts.exclude(pk=account.pk).update(is_default=False)
        PayoutAccount.objects.filter(pk=account.pk).update(is_default=True)
    messages.success(request, f"已将 {account.masked_number} 设为默认收款账户")
    return redirect("merchant:accounts")


# --- notifications ----------------------------------------------------------------------------------------
@merchant_required
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    qs = _merchant(request).notifications.all()
    page = Paginator(qs, 30).get_page(request.GET.get("page"))
    return render(request, "merchant/notifications.html", {"page": page, "nav": "notifications"})


@merchant_required
@require_POST
def notifications_mark_read(request: HttpRequest) -> HttpResponse:
    qs = Notification.objects.filter(merchant=_merchant(request), read_at__isnull=True)
    note_id = request.POST.get("id", "")
    if note_id.isdigit():
        qs = qs.filter(pk=int(note_id))
    qs.update(read_at=timezone.now())
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("merchant:notifications")
