"""Presentation helpers for the merchant pages. Money stays integer fen until this edge."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.models import Notification
from config.catalogue import failure_text
from config.money_filters import yuan, yuan_change, yuan_plain
from withdrawals.models import Status

register = template.Library()

_BADGE: dict[str, str] = {
    Status.PAID: "ok",
    Status.FAILED: "bad",
    Status.REJECTED: "bad",
    Status.REVERSED: "bad",
    Status.CANCELLED: "muted",
    Status.AWAITING_VERIFICATION: "warn",
}


# The money filters (config.money_filters) under this library too, so a merchant page loads one library.
register.filter("yuan", yuan)
register.filter("yuan_plain", yuan_plain)
register.filter("yuan_change", yuan_change)


@register.filter
def status_badge(status: str) -> str:
    return _BADGE.get(status, "progress")


@register.filter
def failure_reason(withdrawal: Any) -> str:
    """The plain-words reason for a failed / rejected withdrawal (config.catalogue)."""
    return failure_text(withdrawal.failure_code, withdrawal.failure_detail)


@register.simple_tag
def unread_count(user: Any) -> int:
    merchant_id = getattr(user, "merchant_id", None)
    if not merchant_id:
        return 0
    return Notification.objects.filter(merchant_id=merchant_id, read_at__isnull=True).count()
