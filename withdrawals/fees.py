from __future__ import annotations

from dataclasses import asdict, dataclass

from .models import Speed, WithdrawalPolicy

ARRIVAL_TEXT = {
    Speed.INSTANT: ("约 2 分钟内到账", "within about 2 minutes"),
    Speed.STANDARD: ("2 小时内到账", "within 2 hours"),
    Speed.T1: ("下一个工作日到账", "next business day"),
}


def policy_current() -> WithdrawalPolicy:
    policy = WithdrawalPolicy.objects.filter(active=True).order_by("-updated_at", "-pk").first()
    if policy is None:
        policy = WithdrawalPolicy.objects.create(name="default")
    return policy


def fee_for(*, policy: WithdrawalPolicy, speed: str, amount: int) -> int:
    prefix = {Speed.INSTANT: "instant", Speed.STANDARD: "standard", Speed.T1: "t1"}[Speed(speed)]
    fixed = getattr(policy, f"{prefix}_fee_fixed")
    rate = getattr(policy, f"{prefix}_fee_rate_bp")
    low = getattr(policy, f"{prefix}_fee_min")
    high = getattr(policy, f"{prefix}_fee_max")
    fee = fixed + (amount * rate + 9999) // 10000  # the percentage part rounds up to the fen
    return min(max(fee, low), high)


@dataclass(frozen=True)
class Quote:
    amount: int
    fee: int
    net_amount: int
    speed: str
    currency: str
    arrival_text: str
    arrival_text_en: str
    channel_name: str
    channel_code: str
    policy_id: int

    def as_dict(self) -> dict:
        return asdict(self)
