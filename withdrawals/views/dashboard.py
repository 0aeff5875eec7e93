"""The merchant's home page: balances, recent withdrawals, unread notifications, limits."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.models import KycRecord
from config.totp import (
    totp_device_confirmed,
)
from wallets.selectors import wallet_balances
from withdrawals.services import (
    withdrawal_limits,
)

from .common import (
    merchant_required,
    request_merchant,
    request_user,
)


# --- dashboard --------------------------------------------------------------------------------------------
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
            "recent": merchant.withdrawals.select_related("payout_account")[:5],
            "unread": merchant.notifications.filter(read_at__isnull=True)[:5],
            "limits": withdrawal_limits(merchant=merchant),
            "kyc": KycRecord.objects.filter(merchant=merchant).first(),
            "totp_enrolled": totp_device_confirmed(user_ids=[request_user(request).pk]) is not None,
            "nav": "home",
        },
    )
