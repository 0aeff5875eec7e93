"""Channel selection and adapter construction. channels knows nothing about merchants or withdrawals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .base import ChannelAdapter
from .models import Channel


@dataclass(frozen=True)
class RoutingDecision:
    channel_code: str
    channel_name: str
    expected_arrival_seconds: int
    explanation: dict[str, Any] = field(default_factory=dict)


def channel_adapter(*, code: str) -> ChannelAdapter:
    channel = Channel.objects.get(code=code)
    if channel.adapter == Channel.Adapter.SANDBOX:
        from .sandbox import SandboxAdapter

        return SandboxAdapter(channel.code, channel.config)
    from .adapters import build_adapter  # protocol adapters (bank direct, Alipay, WeChat)

    return build_adapter(channel.adapter, channel.code, channel.config)


def channel_route(
    *, account_kind: str, amount: int, speed: str, exclude: tuple[str, ...] = ()
) -> RoutingDecision | None:
    """The cheapest enabled channel that supports the account kind and amount; priority breaks ties."""
    candidates = []
    for channel in Channel.objects.filter(enabled=True, paused=False).order_by("priority", "code"):
        reasons = []
        if account_kind not in (channel.supported_account_kinds or []):
            reasons.append("account kind not supported")
        if amount < channel.min_amount or (channel.max_amount is not None and amount > channel.max_amount):
            reasons.append("amount outside channel limits")
        if channel.code in exclude:
            reasons.append("excluded after a definite failure")
        candidates.append(
            {"channel": channel.code, "cost": channel.cost_for(amount), "priority": channel.priority,
             "eligible": not reasons, "why_not": reasons, "name": channel.name,
             "arrival": channel.expected_arrival_seconds}
        )
    eligible = [c for c in candidates if c["eligible"]]
    if not eligible:
        return None
    winner = min(eligible, key=lambda c: (c["cost"], c["priority"], c["channel"]))
    return RoutingDecision(
        channel_code=winner["channel"],
        channel_name=winner["name"],
        expected_arrival_seconds=winner["arrival"],
        explanation={"policy": "lowest_cost", "candidates": candidates, "winner": winner["channel"],
                     "why": f"lowest channel cost ({winner['cost']} fen) among {len(eligible)} eligible"},
    )


def channel_pause(*, code: str, reason: str) -> None:
    Channel.objects.filter(code=code).update(paused=True, paused_reason=reason[:255])
