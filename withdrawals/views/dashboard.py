"""The merchant's home page: balances, recent withdrawals, unread notifications, limits."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.selectors import kyc_record_get, notifications_unread
from config.totp import totp_device_confirmed
from wallets.selectors import wallet_balances
from withdrawals.selectors import withdrawals_of_merchant
from withdrawals.services import withdrawal_limits

from .common import merchant_required, request_merchant, request_user


@merchant_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    merchant = request_merchant(request)
    return render(
        request,
        "merchant/dashboard.html",
        {
            "merchant": merchant,
            "balances": wallet_balances(merchant_id=merchant.pk),
            "recent": withdrawals_of_merchant(merchant_id=merchant.pk)[:5],
            "unread": notifications_unread(merchant_id=merchant.pk, limit=5),
            "limits": withdrawal_limits(merchant=merchant),
            "kyc": kyc_record_get(merchant_id=merchant.pk),
            "totp_enrolled": totp_device_confirmed(user_ids=[request_user(request).pk]) is not None,
            "nav": "home",
        },
    )
