"""Channel selection, admission (quota + breaker), adapter construction, pausing and callbacks' receipts.

channels knows nothing about merchants or withdrawals: callers pass order numbers and amounts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .adapters import build_adapter
from .base import ChannelAdapter
from .health import breaker_admit, channel_alert_raise
from .models import CallbackReceipt, Channel, ChannelAlert, ChannelQuotaReservation, ChannelQuotaUsage
from .routing import RoutingDecision, route
from .sandbox import SandboxAdapter

log = logging.getLogger(__name__)

__all__ = [
    "RoutingDecision",
    "channel_adapter",
    "channel_callback_receipt",
    "channel_pause",
    "channel_quota_release",
    "channel_reserve",
    "channel_route",
]


def channel_adapter(*, code: str) -> ChannelAdapter:
    channel = Channel.objects.get(code=code)
    if channel.adapter == Channel.Adapter.SANDBOX:
        return SandboxAdapter(channel.code, channel.config)
    # A protocol adapter: bank-direct, Alipay or WeChat.
    return build_adapter(channel.adapter, channel.code, channel.config)


def channel_route(
    *, account_kind: str, amount: int, speed: str, exclude: tuple[str, ...] = (), now: datetime | None = None
) -> RoutingDecision | None:
    """The best channel for this payout now, with the explanation (see channels.routing)."""
    return route(account_kind=account_kind, amount=amount, speed=speed, exclude=exclude, now=now)


def channel_can_serve(*, account_kind: str, amount: int, speed: str) -> bool:
    """Whether any enabled channel could ever take this payout (account kind, speed tier, amount limits),
    whatever its health, quota or pause today: when none could, the request is refused up front instead of
    waiting for a channel for ever."""
    for ch in Channel.objects.filter(enabled=True):
        if account_kind not in (ch.supported_account_kinds or []):
            continue
        if ch.speed_tiers and speed not in ch.speed_tiers:
            continue
        if amount < ch.min_amount or (ch.max_amount is not None and amount > ch.max_amount):
            continue
        return True
    return False


@dataclass(frozen=True)
class Admission:
    admitted: bool
    reason: str = ""


def channel_reserve(*, code: str, order_no: str, amount: int, now: datetime | None = None) -> Admission:
    """Admit one new payout to a channel: its breaker lets it through (a half-open probe counts) and today's
    quota has room; the quota is counted here, once per order number. Runs inside the caller's transaction
    (the withdrawal's), so a rollback undoes the count too."""
    now = now or timezone.now()
    day = timezone.localdate(now)
    with transaction.atomic():
        # FOR NO KEY UPDATE: inserting rows that reference the channel (breaker, quota rows) elsewhere takes
        # KEY SHARE locks on it, which a plain FOR UPDATE would block (a deadlock with those inserters).
        channel = Channel.objects.select_for_update(no_key=True).get(code=code)
        existing = ChannelQuotaReservation.objects.filter(channel=channel, order_no=order_no).first()
        if existing is not None and existing.released_at is None:
            return Admission(True, "already counted")
        admitted, why = breaker_admit(channel=channel, now=now)
        if not admitted:
            return Admission(False, why)
        ChannelQuotaUsage.objects.get_or_create(channel=channel, day=day)
        usage = ChannelQuotaUsage.objects.select_for_update().get(channel=channel, day=day)
        if channel.daily_amount_limit is not None and usage.amount + amount > channel.daily_amount_limit:
            return Admission(False, "daily amount quota exceeded")
        if channel.daily_count_limit is not None and usage.count + 1 > channel.daily_count_limit:
            return Admission(False, "daily count quota exceeded")
        if existing is not None:
            existing.day, existing.amount, existing.released_at = day, amount, None
            existing.save(update_fields=["day", "amount", "released_at"])
        else:
            ChannelQuotaReservation.objects.create(channel=channel, order_no=order_no, day=day, amount=amount)
        ChannelQuotaUsage.objects.filter(pk=usage.pk).update(amount=F("amount") + amount, count=F("count") + 1)
    return Admission(True)


def channel_quota_release(*, code: str, order_no: str) -> bool:
    """A payout definitely did not happen on this channel: give its share of the day's quota back (once)."""
    with transaction.atomic():
        r = (
            ChannelQuotaReservation.objects.select_for_update()
            .filter(channel__code=code, order_no=order_no, released_at__isnull=True)
            .first()
        )
        if r is None:
            return False
        usage = ChannelQuotaUsage.objects.select_for_update().filter(channel_id=r.channel_id, day=r.day).first()
        if usage is not None:
            ChannelQuotaUsage.objects.filter(pk=usage.pk).update(amount=F("amount") - r.amount, count=F("count") - 1)
        r.released_at = timezone.now()
        r.save(update_fields=["released_at"])
    return True


def channel_pause(*, code: str, reason: str) -> None:
    """Stop routing new payouts to a channel (funding, keys, contract): operations un-pauses it in the admin."""
    updated = Channel.objects.filter(code=code, paused=False).update(paused=True, paused_reason=reason[:255])
    if updated:
        channel_alert_raise(
            kind=ChannelAlert.Kind.CHANNEL_PAUSED,
            channel_code=code,
            severity=ChannelAlert.Severity.CRITICAL,
            title=f"通道 {code} 已自动暂停：{reason}"[:200],
            detail={"reason": reason},
        )


def channel_callback_receipt(*, channel_code: str, notify_id: str, order_no: str, status: str, outcome: str) -> bool:
    """Store that a notification was handled. False when it was handled before (a replay)."""
    try:
        with transaction.atomic():
            CallbackReceipt.objects.create(
                channel_code=channel_code,
                notify_id=notify_id[:128],
                order_no=order_no[:64],
                status=status[:20],
                outcome=outcome[:40],
            )
    except IntegrityError:
        return False
    return True


def channel_callback_seen(*, channel_code: str, notify_id: str) -> bool:
    return CallbackReceipt.objects.filter(channel_code=channel_code, notify_id=notify_id[:128]).exists()
