from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, time

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from workdays.selectors import next_working_day

from .models import Speed, WithdrawalPolicy

ARRIVAL_TEXT = {
    Speed.INSTANT: ("约 2 分钟内到账", "within about 2 minutes"),
    Speed.STANDARD: ("2 小时内到账", "within 2 hours"),
    Speed.T1: ("下一个工作日到账", "next business day"),
}


WEEKDAYS_ZH = "一二三四五六日"


def t1_batch_time() -> time:
    try:
        hours, minutes = (int(part) for part in settings.T1_BATCH_TIME.split(":"))
        return time(hours, minutes)
    except ValueError as exc:
        raise ImproperlyConfigured(f"T1_BATCH_TIME must be HH:MM, not {settings.T1_BATCH_TIME!r}") from exc


def t1_batch_at(now: datetime) -> datetime:
    """When a T+1 withdrawal submitted at ``now`` is paid: at ``T1_BATCH_TIME`` (local) on the first working day
    after the local date of ``now`` (a Friday's go out on Monday, a holiday's after the holiday, a Saturday's on a
    make-up working Sunday)."""
    day = next_working_day(timezone.localdate(now))
    return timezone.make_aware(datetime.combine(day, t1_batch_time()))


def arrival_texts(speed: str, now: datetime) -> tuple[str, str]:
    """The arrival promise in zh-Hans and English; for T+1 the day of its batch."""
    if speed != Speed.T1:
        return ARRIVAL_TEXT[Speed(speed)]
    at = timezone.localtime(t1_batch_at(now))
    zh = f"{at.month}月{at.day}日（周{WEEKDAYS_ZH[at.weekday()]}）{at:%H:%M} 批量出款，当日到账"
    en = f"paid in the batch of {at:%a} {at.day} {at:%b} at {at:%H:%M}, arrives that day"
    return zh, en


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
