"""What can go wrong in a run, and how often: drawn once from the seed (some seeds are calm, some are harsh).

The rates are per event: per channel request (network), per published message (broker), per crash point a
worker passes, per callback (the gateway's own fault kinds), per new payout (the gateway's scripted answers).
Episodes — gateway restarts, unannounced channel maintenance, changes of a channel's behaviour — are
scheduled by ``simulation.channel``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from .randomness import Dice

T = TypeVar("T")

# Provider codes the gateway may be scripted to answer, per protocol, by what they make the platform do.
CHANNEL_CODES: dict[str, dict[str, str]] = {
    "bankdirect": {
        "busy": "SYSTEM_BUSY",  # not accepted, retry under the same order number
        "rate_limited": "RATE_LIMITED",  # back off
        "definite_failure": "ACCOUNT_CLOSED",  # a failed payout: the withdrawal fails
        "funding": "BALANCE_INSUFFICIENT",  # our settlement account is empty: pause the channel
        "reroute": "DAILY_LIMIT_EXCEEDED",  # this channel cannot take it: another may
    },
    "alipay": {
        "busy": "SYSTEM_ERROR",  # unknown: query, resubmit under the same out_biz_no
        "definite_failure": "PAYEE_CARD_INFO_ERROR",
        "funding": "PAYER_BALANCE_NOT_ENOUGH",
        "reroute": "EXCEED_LIMIT_DM_AMOUNT",
    },
    "wechat": {
        "busy": "SYSTEM_ERROR",
        "rate_limited": "FREQUENCY_LIMITED",
        "definite_failure": "TRANSFER_RISK",
        "funding": "NOT_ENOUGH",
    },
}


@dataclass
class FaultPlan:
    dice: Dice
    profile: str = "moderate"
    # network, per channel request
    request_lost_rate: float = 0.01  # never reaches the gateway; the caller times out
    answer_lost_rate: float = 0.01  # executed, the answer never comes back; the caller times out
    slow_request_rate: float = 0.005  # reaches the gateway only after the caller timed out
    kill_in_flight_rate: float = 0.004  # the worker is killed while its request is at the gateway
    # broker, per published message
    broker_lose_rate: float = 0.01
    broker_duplicate_rate: float = 0.02
    # crash points on the payout path (config.faults), per point a worker passes
    crash_rate: float = 0.01
    # gateway episodes, per simulated day
    restarts_per_day: float = 0.3
    maintenance_per_day: float = 0.5  # per channel, unannounced (the gateway refuses new payouts)
    weather_changes_per_day: float = 3.0  # per channel: a new mix of scripted answers and callback faults
    slow_spell_rate: float = 0.25  # share of weather changes that bring a slow spell (answers take seconds)
    flaps_per_day: float = 0.15  # per channel: 15–60 min of slow answers, "busy" and maintenance flipping
    # the gateway's scripted answers, upper bounds of the per-payout rates a weather change draws from
    busy_max: float = 0.06
    rate_limited_max: float = 0.02
    definite_failure_max: float = 0.04
    funding_max: float = 0.004
    reroute_max: float = 0.01
    gateway_timeout_max: float = 0.03  # executed, answer withheld (hang) past the client's timeout
    gateway_drop_max: float = 0.01  # dropped before executing
    return_rate_max: float = 0.01  # bank returns after paid
    callback_lost_max: float = 0.15
    callback_duplicate_max: float = 0.15
    callback_late_max: float = 0.15
    callback_out_of_order_max: float = 0.08
    # WeChat payees who never confirm (the transfer expires after 24 h)
    payee_unclaimed_rate: float = 0.08
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_seed(cls, seed: int, *, profile: str = "") -> FaultPlan:
        dice = Dice(seed)
        profile = profile or dice.choice("profile", ["calm", "moderate", "harsh"], [0.2, 0.5, 0.3])
        scale = {"calm": 0.3, "moderate": 1.0, "harsh": 2.5, "flappy": 1.0, "none": 0.0}[profile]
        plan = cls(dice=dice, profile=profile)
        for name in (
            "request_lost_rate",
            "answer_lost_rate",
            "slow_request_rate",
            "kill_in_flight_rate",
            "broker_lose_rate",
            "broker_duplicate_rate",
            "crash_rate",
            "restarts_per_day",
            "maintenance_per_day",
            "slow_spell_rate",
            "flaps_per_day",
            "busy_max",
            "rate_limited_max",
            "definite_failure_max",
            "funding_max",
            "reroute_max",
            "gateway_timeout_max",
            "gateway_drop_max",
            "return_rate_max",
            "callback_lost_max",
            "callback_duplicate_max",
            "callback_late_max",
            "callback_out_of_order_max",
        ):
            setattr(plan, name, min(getattr(plan, name) * scale, 0.5))
        if profile == "flappy":  # the channel of defect 1: slow, busy, in and out of maintenance, under load
            plan.flaps_per_day, plan.slow_spell_rate = 3.0, 0.5
        if profile == "none":
            plan.weather_changes_per_day = 0.0
            plan.payee_unclaimed_rate = 0.0
        return plan

    def rates(self) -> dict[str, float]:
        return {k: v for k, v in vars(self).items() if isinstance(v, float)}

    # --- dice, per concern ------------------------------------------------------------------------------
    def roll(self, stream: str, probability: float) -> bool:
        return self.dice.roll(stream, probability)

    def uniform(self, stream: str, low: float, high: float) -> float:
        return self.dice.uniform(stream, low, high)

    def choice(self, stream: str, options: Sequence[T], weights: Sequence[float] | None = None) -> T:
        return self.dice.choice(stream, options, weights)
