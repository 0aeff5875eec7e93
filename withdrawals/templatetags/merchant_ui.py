"""Presentation helpers for the merchant pages. Money stays integer fen until this edge."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.models import Notification
from config.errors import CATALOGUE, error_message
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


def fen_to_yuan(fen: int, *, grouping: bool = True) -> str:
    """1234567 → "12,345.67". Integer arithmetic only, so no float ever touches an amount."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(int(fen)), 100)
    whole = f"{yuan:,}" if grouping else str(yuan)
    return f"{sign}{whole}.{cents:02d}"


@register.filter
def yuan(value: Any) -> str:
    if value is None or value == "":
        return ""
    return fen_to_yuan(int(value))


@register.filter
def yuan_plain(value: Any) -> str:
    """For form values: no thousands separators, so the amount parser reads it back unchanged."""
    if value is None or value == "":
        return ""
    return fen_to_yuan(int(value), grouping=False)


@register.filter
def status_badge(status: str) -> str:
    return _BADGE.get(status, "progress")


def failure_text(code: str, detail: str = "") -> str:
    """The plain-words reason for a failed / rejected withdrawal."""
    if not code:
        return ""
    if code in CATALOGUE:
        return error_message(code)
    if code == "rejected_by_review":
        return f"审核未通过：{detail}" if detail else "审核未通过"
    return detail or "提现未成功，资金已退回可提现余额"


@register.filter
def failure_reason(withdrawal: Any) -> str:
    return failure_text(withdrawal.failure_code, withdrawal.failure_detail)


@register.simple_tag
def unread_count(user: Any) -> int:
    merchant_id = getattr(user, "merchant_id", None)
    if not merchant_id:
        return 0
    return Notification.objects.filter(merchant_id=merchant_id, read_at__isnull=True).count()
