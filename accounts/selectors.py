"""Reads of accounts' rows for the layers above (the merchant pages): KYC, payout accounts, notifications, an
authenticator being enrolled."""

from __future__ import annotations

from django.db.models import QuerySet
from django_otp.plugins.otp_totp.models import TOTPDevice

from .models import KycRecord, Notification, PayoutAccount


def kyc_record_get(*, merchant_id: int) -> KycRecord | None:
    return KycRecord.objects.filter(merchant_id=merchant_id).first()


def payout_account_get(*, merchant_id: int, account_id: int) -> PayoutAccount | None:
    """One of the merchant's payout accounts; None for somebody else's id."""
    return PayoutAccount.objects.filter(pk=account_id, merchant_id=merchant_id).first()


def payout_accounts_of(*, merchant_id: int) -> list[PayoutAccount]:
    """The default account first, then the newest."""
    return list(PayoutAccount.objects.filter(merchant_id=merchant_id).order_by("-is_default", "-created_at"))


def notifications_of(*, merchant_id: int) -> QuerySet[Notification]:
    """Newest first (the model's ordering), for a paginator."""
    return Notification.objects.filter(merchant_id=merchant_id)


def notifications_unread(*, merchant_id: int, limit: int) -> QuerySet[Notification]:
    return Notification.objects.filter(merchant_id=merchant_id, read_at__isnull=True)[:limit]


def totp_device_unconfirmed(*, user_id: int, device_id: int) -> TOTPDevice | None:
    """An authenticator shown to the user but not confirmed yet."""
    return TOTPDevice.objects.filter(user_id=user_id, confirmed=False, pk=device_id).first()
