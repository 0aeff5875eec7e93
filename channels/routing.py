"""Choose a channel for one payout, and say why.

Every enabled channel is a candidate. A candidate is *ineligible* (with the reasons in ``why_not``) when it is
paused, does not serve the account kind or speed tier, the amount is outside its limits, it is in a maintenance
window, today's quota would be exceeded, its breaker is open (or half-open with its probes in flight), or the
payout already failed there definitely (``exclude``).

Eligible candidates are scored, lower is better, from five components each in [0, 1]:
- ``fee``: what the channel charges us, relative to the dearest eligible one;
- ``arrival``: expected arrival time, relative to the slowest eligible one;
- ``reliability``: 1 − live success rate in the health window (no calls yet → assumed healthy);
- ``health``: 0 when the breaker is closed, 1 when half-open (a probe);
- ``quota``: share of today's quota used once this payout is counted.

The policy sets the weights: small amounts → ``lowest_fee``; net amounts at or above
``ROUTING_LARGE_AMOUNT_FEN`` → ``large_amount_bank_direct`` (only bank-direct channels compete when one is
eligible); the instant tier → ``instant_fastest``. Ties go to the lower ``priority``, then the code, so the same
inputs always give the same winner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from config.money import fen_to_yuan

from .health import breaker_views, window_stats
from .models import Channel, ChannelBreaker, ChannelQuotaUsage

WEIGHTS: dict[str, dict[str, float]] = {
    "lowest_fee": {"fee": 0.60, "arrival": 0.10, "reliability": 0.20, "health": 0.05, "quota": 0.05},
    "large_amount_bank_direct": {"fee": 0.30, "arrival": 0.10, "reliability": 0.40, "health": 0.10, "quota": 0.10},
    "instant_fastest": {"fee": 0.10, "arrival": 0.60, "reliability": 0.20, "health": 0.05, "quota": 0.05},
}
POLICY_TEXT = {
    "lowest_fee": "小额：费用最低优先",
    "large_amount_bank_direct": "大额：银行直连优先",
    "instant_fastest": "极速到账：最快通道优先",
}


@dataclass(frozen=True)
class RoutingDecision:
    channel_code: str
    channel_name: str
    expected_arrival_seconds: int
    explanation: dict[str, Any] = field(default_factory=dict)


def in_maintenance(channel: Channel, now: datetime) -> bool:
    """Daily windows in local time, e.g. {"start": "23:00", "end": "00:30"} (may cross midnight)."""
    local = timezone.localtime(now).strftime("%H:%M")
    for window in channel.maintenance_windows or []:
        try:
            start, end = str(window["start"]), str(window["end"])
        except (KeyError, TypeError):
            continue
        if start <= end:
            if start <= local < end:
                return True
        elif local >= start or local < end:
            return True
    return False


def choose_policy(*, amount: int, speed: str) -> tuple[str, str]:
    if speed == "instant":
        return "instant_fastest", "极速到账档位"
    if amount >= settings.ROUTING_LARGE_AMOUNT_FEN:
        return (
            "large_amount_bank_direct",
            f"到账金额 {fen_to_yuan(amount)} 元 ≥ 大额阈值 {fen_to_yuan(settings.ROUTING_LARGE_AMOUNT_FEN)} 元",
        )
    return (
        "lowest_fee",
        f"到账金额 {fen_to_yuan(amount)} 元 < 大额阈值 {fen_to_yuan(settings.ROUTING_LARGE_AMOUNT_FEN)} 元",
    )


def route(
    *, account_kind: str, amount: int, speed: str, exclude: tuple[str, ...] = (), now: datetime | None = None
) -> RoutingDecision | None:
    now = now or timezone.now()
    channels = list(Channel.objects.filter(enabled=True).order_by("priority", "code"))
    codes = [c.code for c in channels]
    stats = window_stats(codes=codes, now=now)
    breakers = breaker_views(codes=codes, now=now)
    usage = {
        u.channel_id: u for u in ChannelQuotaUsage.objects.filter(channel__in=channels, day=timezone.localdate(now))
    }
    policy, policy_reason = choose_policy(amount=amount, speed=speed)

    candidates: list[dict[str, Any]] = []
    for ch in channels:
        why_not: list[str] = []
        if ch.paused:
            why_not.append(f"paused: {ch.paused_reason or 'by operations'}")
        if account_kind not in (ch.supported_account_kinds or []):
            why_not.append(f"account kind {account_kind} not supported")
        if ch.speed_tiers and speed not in ch.speed_tiers:
            why_not.append(f"speed tier {speed} not served")
        if amount < ch.min_amount:
            why_not.append(f"amount below channel minimum {ch.min_amount}")
        if ch.max_amount is not None and amount > ch.max_amount:
            why_not.append(f"amount above channel maximum {ch.max_amount}")
        if ch.code in exclude:
            why_not.append("excluded after a definite failure on this payout")
        if in_maintenance(ch, now):
            why_not.append("in a maintenance window")
        used = usage.get(ch.pk)
        used_amount, used_count = (used.amount, used.count) if used else (0, 0)
        amount_left = None if ch.daily_amount_limit is None else ch.daily_amount_limit - used_amount
        count_left = None if ch.daily_count_limit is None else ch.daily_count_limit - used_count
        if amount_left is not None and amount > amount_left:
            why_not.append(f"daily amount quota left {max(amount_left, 0)} < {amount}")
        if count_left is not None and count_left < 1:
            why_not.append("daily count quota used up")
        breaker = breakers[ch.code]
        if not breaker.admits_new_payouts:
            why_not.append(f"circuit breaker {breaker.state}" + (f" ({breaker.reason})" if breaker.reason else ""))
        s = stats.get(ch.code)
        quota_share = 0.0
        if ch.daily_amount_limit:
            quota_share = max(quota_share, (used_amount + amount) / ch.daily_amount_limit)
        if ch.daily_count_limit:
            quota_share = max(quota_share, (used_count + 1) / ch.daily_count_limit)
        candidates.append(
            {
                "channel": ch.code,
                "name": ch.name,
                "adapter": ch.adapter,
                "priority": ch.priority,
                "eligible": not why_not,
                "why_not": why_not,
                "cost": ch.cost_for(amount),
                "arrival": ch.expected_arrival_seconds,
                "success_rate": round(s.success_rate, 4) if s and s.success_rate is not None else None,
                "calls_in_window": s.calls if s else 0,
                "breaker": breaker.state,
                "quota_left": {"amount": amount_left, "count": count_left},
                "_quota_share": min(quota_share, 1.0),
            }
        )

    eligible = [c for c in candidates if c["eligible"]]
    explanation: dict[str, Any] = {
        "policy": policy,
        "policy_text": POLICY_TEXT[policy],
        "policy_reason": policy_reason,
        "amount": amount,
        "speed": speed,
        "account_kind": account_kind,
        "decided_at": now.isoformat(),
        "weights": WEIGHTS[policy],
    }
    competing = eligible
    if policy == "large_amount_bank_direct":
        direct = [c for c in eligible if c["adapter"] == Channel.Adapter.BANKDIRECT]
        if direct:
            competing = direct
            for c in eligible:
                if c not in direct:
                    c["why_not_preferred"] = "large amounts go bank-direct while one is available"
        else:
            explanation["policy_fallback"] = "no bank-direct channel eligible: all eligible channels compete"
    _score(competing, WEIGHTS[policy])
    for c in candidates:
        c.pop("_quota_share", None)
    explanation["candidates"] = candidates
    if not competing:
        explanation["winner"] = None
        explanation["why"] = "no eligible channel"
        return None
    ranked = sorted(competing, key=lambda c: (c["score"], c["priority"], c["channel"]))
    for rank, c in enumerate(ranked, 1):
        c["rank"] = rank
    winner = ranked[0]
    why = (
        f"{POLICY_TEXT[policy]}：{winner['name']} 综合得分最低 {winner['score']:.4f}"
        f"（费用 {winner['cost']} 分，预计 {winner['arrival']} 秒到账"
        + (f"，成功率 {winner['success_rate']:.1%}" if winner["success_rate"] is not None else "，暂无调用记录")
        + f"），共 {len(competing)} 个通道参与比较"
    )
    if len(ranked) > 1:
        runner = ranked[1]
        tie = " (tie broken by priority/code)" if runner["score"] == winner["score"] else ""
        why += f"；次优 {runner['name']} 得分 {runner['score']:.4f}{tie}"
    explanation.update(winner=winner["channel"], why=why)
    return RoutingDecision(
        channel_code=winner["channel"],
        channel_name=winner["name"],
        expected_arrival_seconds=winner["arrival"],
        explanation=explanation,
    )


def _score(candidates: list[dict[str, Any]], weights: dict[str, float]) -> None:
    if not candidates:
        return
    max_cost = max(c["cost"] for c in candidates)
    max_arrival = max(c["arrival"] for c in candidates)
    for c in candidates:
        components = {
            "fee": c["cost"] / max_cost if max_cost else 0.0,
            "arrival": c["arrival"] / max_arrival if max_arrival else 0.0,
            "reliability": 1.0 - c["success_rate"] if c["success_rate"] is not None else 0.0,
            "health": 1.0 if c["breaker"] == ChannelBreaker.State.HALF_OPEN else 0.0,
            "quota": c["_quota_share"],
        }
        c["components"] = {k: round(v, 4) for k, v in components.items()}
        c["score"] = round(sum(weights[k] * v for k, v in components.items()), 6)
