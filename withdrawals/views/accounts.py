"""Payout accounts and security: the merchant's bank cards / e-wallets and the authenticator (TOTP) enrolment."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import PayoutAccount, User
from accounts.selectors import kyc_record_get, payout_account_get, totp_device_unconfirmed
from accounts.services import names_match, payout_account_add
from accounts.services import payout_account_set_default as set_default
from config.errors import DomainError, error_message
from config.totp import (
    totp_current_factor_verify,
    totp_device_confirmed,
    totp_enrol_confirm,
    totp_enrol_start,
    totp_qr_svg,
)
from risk.sms import mask_phone
from risk.stepup import stepup_issue, stepup_verify, totp_enrol_subject
from withdrawals.forms import BANK_NAMES, PayoutAccountForm, VerifyCodeForm
from withdrawals.selectors import payout_account_options

from .common import (
    client_ip,
    dev_sms,
    device_id,
    merchant_required,
    request_merchant,
    request_user,
    wait_message,
)

# --- security: TOTP authenticator enrolment ---------------------------------------------------------------
TOTP_PENDING_KEY = "_totp_pending_device"
TOTP_PENDING_SECONDS = 10 * 60


def _pending_totp_device(request: HttpRequest, user: User) -> TOTPDevice | None:
    """The device this session was shown a key for, after re-authenticating (10 minutes)."""
    pending = request.session.get(TOTP_PENDING_KEY)
    if not isinstance(pending, dict) or timezone.now().timestamp() - float(pending.get("at", 0)) > TOTP_PENDING_SECONDS:
        return None
    return totp_device_unconfirmed(user_id=user.pk, device_id=int(pending.get("id", 0)))


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
    user = request_user(request)
    merchant = request_merchant(request)
    enrolled = totp_device_confirmed(user_ids=[user.pk]) is not None
    pending = _pending_totp_device(request, user)
    error = ""
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action == "send_code" and not enrolled:
        kyc = kyc_record_get(merchant_id=merchant.pk)
        try:
            if kyc is None:
                raise DomainError("kyc_required")
            stepup_issue(subject=totp_enrol_subject(user_id=user.pk), merchant_id=merchant.pk, phone=kyc.phone)
        except DomainError as exc:
            error = wait_message(exc)
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
    kyc = kyc_record_get(merchant_id=merchant.pk)
    return render(
        request,
        "merchant/security_totp.html",
        {
            "enrolled": enrolled,
            "pending": pending is not None,
            "qr_svg": totp_qr_svg(pending) if pending is not None else "",
            "error": error,
            "phone_masked": mask_phone(kyc.phone) if kyc else "",
            "dev_sms": dev_sms(merchant) if not enrolled and pending is None else None,
            "nav": "security",
        },
        status=400 if error else 200,
    )


# --- payout accounts --------------------------------------------------------------------------------------
@dataclass
class AccountRow:
    """A payout account as the accounts page lists it."""

    account: PayoutAccount
    usable: bool
    reason: str
    bank_name: str


@merchant_required
@require_http_methods(["GET", "POST"])
def payout_accounts(request: HttpRequest) -> HttpResponse:
    merchant = request_merchant(request)
    kyc = kyc_record_get(merchant_id=merchant.pk)
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
    options = [
        AccountRow(o.account, o.usable, o.reason, BANK_NAMES.get(o.account.bank_code, o.account.bank_code))
        for o in payout_account_options(merchant=merchant)
    ]
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
    merchant = request_merchant(request)
    account = payout_account_get(merchant_id=merchant.pk, account_id=pk)
    if account is None:
        raise Http404
    set_default(merchant=merchant, account=account)
    messages.success(request, f"已将 {account.masked_number} 设为默认收款账户")
    return redirect("merchant:accounts")
