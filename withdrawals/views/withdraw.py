"""A new withdrawal: step 1 (the form), step 2 (the confirm page that submits), and the live fee quote."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import PayoutAccount
from accounts.selectors import payout_account_get
from config.errors import DomainError, error_message
from config.money import fen_to_yuan
from wallets.selectors import wallet_balances
from withdrawals.fees import arrival_texts, policy_current
from withdrawals.forms import BANK_NAMES, WithdrawForm, parse_yuan
from withdrawals.models import Speed
from withdrawals.selectors import AccountOption, payout_account_options
from withdrawals.services import withdrawal_quote, withdrawal_submit

from .common import client_ip, device_id, merchant_required, request_merchant, request_user, submitted_message

DRAFT_SALT = "withdrawals.web.draft"
DRAFT_MAX_AGE_SECONDS = 30 * 60


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
    now = timezone.now()
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
                "arrival": arrival_texts(speed.value, now)[0],
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
    merchant = request_merchant(request)
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
    merchant = request_merchant(request)
    options = payout_account_options(merchant=merchant)
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
    if draft.get("m") != request_merchant(request).pk:
        return None
    return draft


def _confirm_page(
    request: HttpRequest, token: str, draft: dict[str, Any], *, error: str = "", status: int = 200
) -> HttpResponse:
    merchant = request_merchant(request)
    account = payout_account_get(merchant_id=merchant.pk, account_id=draft["p"])
    if account is None:
        raise Http404
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
            actor=request_user(request),
            source="web",
            ip=client_ip(request),
            device=device_id(request),
        )
    except DomainError as exc:
        # quote_expired: the page is rendered again with the new quote and its fee as expected_fee.
        return _confirm_page(request, token, draft, error=exc.message)
    submitted_message(request, result.withdrawal, created=result.created)
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
