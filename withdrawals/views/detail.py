"""One withdrawal after submission: the list, the detail page and its progress poll, and the merchant's
actions on it (cancel, step-up verify / resend / face, retry)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_GET, require_POST

from accounts.models import PayoutAccount
from config.catalogue import failure_describe, failure_text
from config.errors import DomainError, error_message
from risk.models import StepUpChallenge
from risk.stepup import face_check_available, face_provider, face_sandbox_controls_enabled, stepup_sms_retry_after
from withdrawals.forms import VerifyCodeForm
from withdrawals.models import (
    CANCELLABLE_STATES,
    FINAL_STATES,
    HOLDING_STATES,
    RETRYABLE_STATES,
    Speed,
    Status,
    Withdrawal,
    WithdrawalEvent,
)
from withdrawals.selectors import (
    payout_account_options,
    withdrawal_events,
    withdrawal_face_session,
    withdrawal_retried_by,
    withdrawals_of_merchant,
)
from withdrawals.services import (
    withdrawal_cancel,
    withdrawal_face_complete,
    withdrawal_face_start,
    withdrawal_quote,
    withdrawal_resend_code,
    withdrawal_retry,
    withdrawal_stepup_method,
    withdrawal_verify,
)

from .common import (
    UNPAID_FINAL_STATES,
    client_ip,
    dev_sms,
    device_id,
    merchant_required,
    own_withdrawal,
    request_merchant,
    request_user,
    submitted_message,
    wait_message,
)

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
    rows = withdrawals_of_merchant(merchant_id=request_merchant(request).pk, statuses=FILTERS[current][1])
    page = Paginator(rows, 20).get_page(request.GET.get("page"))
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


def _progress(w: Withdrawal, events: list[WithdrawalEvent]) -> list[dict[str, Any]]:
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
    if at > 0:
        labels[0] = "审核通过"  # a finished step says how it ended, not what it was doing
    if at > 1:
        labels[1] = "已出款"
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


def _timeline(events: list[WithdrawalEvent]) -> list[dict[str, Any]]:
    rows = []
    for e in events:
        label = Status(e.to_status).label if e.to_status in Status.values else e.to_status
        rows.append({"time": e.created_at, "status": e.to_status, "label": label, "reason": e.reason})
    return rows


def _progress_context(w: Withdrawal) -> dict[str, Any]:
    events = withdrawal_events(withdrawal_id=w.pk)
    return {
        "w": w,
        "steps": _progress(w, events),
        "timeline": _timeline(events),
        "failure": failure_text(w.failure_code, w.failure_detail),
        "unpaid_final": w.status in UNPAID_FINAL_STATES,
    }


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
    w = own_withdrawal(request, pk)
    merchant = request_merchant(request)
    awaiting = w.status == Status.AWAITING_VERIFICATION
    method = withdrawal_stepup_method(withdrawal_id=w.pk) if awaiting else ""
    ctx: dict[str, Any] = {
        **_progress_context(w),
        "nav": "list",
        "cancellable": w.status in CANCELLABLE_STATES,
        "verify_form": VerifyCodeForm() if awaiting and method != StepUpChallenge.Method.FACE else None,
        "stepup_method": method,
        "face_session": withdrawal_face_session(withdrawal_id=w.pk) if method == StepUpChallenge.Method.FACE else None,
        "face_available": awaiting and face_check_available(),
        "face_sandbox": face_sandbox_controls_enabled(),
        "dev_sms": dev_sms(merchant) if awaiting and method == StepUpChallenge.Method.SMS else None,
        "resend_wait": stepup_sms_retry_after(subject=f"withdrawal:{w.pk}") if awaiting else 0,
        "speed_label": Speed(w.speed).label,
    }
    retried_by = withdrawal_retried_by(withdrawal_id=w.pk)
    ctx["retried_by"] = retried_by
    if w.status in RETRYABLE_STATES and retried_by is None:
        options = payout_account_options(merchant=merchant)
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
    w = own_withdrawal(request, pk)
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


def _post_action(request: HttpRequest, pk: int, action: Callable[[], object], success: str) -> HttpResponse:
    own_withdrawal(request, pk)  # 404 before anything else for somebody else's id
    try:
        action()
    except DomainError as exc:
        if exc.code == "not_found":
            raise Http404
        left = exc.details.get("attempts_left")
        tries = f"，还可尝试 {left} 次" if exc.code == "verification_failed" and isinstance(left, int) else ""
        messages.error(request, exc.message + tries)
    else:
        messages.success(request, success)
    return redirect("merchant:withdrawal_detail", pk=pk)


@merchant_required
@require_POST
def withdrawal_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = request_merchant(request)
    return _post_action(
        request,
        pk,
        lambda: withdrawal_cancel(withdrawal_id=pk, merchant_id=merchant.pk, actor=request_user(request)),
        "已取消，资金已退回可提现余额",
    )


@merchant_required
@require_POST
def withdrawal_verify_view(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = request_merchant(request)
    own_withdrawal(request, pk)
    form = VerifyCodeForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors["code"].as_text().removeprefix("* "))
        return redirect("merchant:withdrawal_detail", pk=pk)
    code = form.cleaned_data["code"].strip()
    return _post_action(
        request,
        pk,
        lambda: withdrawal_verify(withdrawal_id=pk, merchant_id=merchant.pk, code=code, actor=request_user(request)),
        "验证成功，正在为您出款",
    )


@merchant_required
@require_POST
def withdrawal_face_start_view(request: HttpRequest, pk: int) -> HttpResponse:
    merchant = request_merchant(request)
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
    merchant = request_merchant(request)
    w = own_withdrawal(request, pk)
    sandbox = request.POST.get("sandbox")
    if sandbox in ("pass", "fail") and face_sandbox_controls_enabled():
        face_provider().sandbox_capture(
            session_id=withdrawal_face_session(withdrawal_id=w.pk), passed=sandbox == "pass"
        )
    return _post_action(
        request,
        pk,
        lambda: withdrawal_face_complete(withdrawal_id=pk, merchant_id=merchant.pk, actor=request_user(request)),
        "人脸核验通过，正在为您出款",
    )


@merchant_required
@require_POST
def withdrawal_resend_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A new code, at most once a minute and a few times a day (risk.stepup); a resend gives no new guesses."""
    merchant = request_merchant(request)
    own_withdrawal(request, pk)
    try:
        withdrawal_resend_code(withdrawal_id=pk, merchant_id=merchant.pk)
    except DomainError as exc:
        if exc.code == "not_found":
            raise Http404
        messages.error(request, wait_message(exc))
    else:
        messages.success(request, "验证码已重新发送")
    return redirect("merchant:withdrawal_detail", pk=pk)


@merchant_required
@require_POST
def withdrawal_retry_view(request: HttpRequest, pk: int) -> HttpResponse:
    """One click: a new withdrawal with the same amount and speed, to the chosen account, under a new key
    (rendered with the page, so a double click still makes only one)."""
    old = own_withdrawal(request, pk)
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
            actor=request_user(request),
            source="web",
            ip=client_ip(request),
            device=device_id(request),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        if exc.code == "already_retried":
            return redirect("merchant:withdrawal_detail", pk=exc.details["retry"])
        return redirect("merchant:withdrawal_detail", pk=pk)
    submitted_message(request, result.withdrawal, created=result.created)
    return redirect("merchant:withdrawal_detail", pk=result.withdrawal.pk)
