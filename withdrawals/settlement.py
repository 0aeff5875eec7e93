"""Automatic settlement (自动结算): a merchant's rule withdraws for it, on working days at a time, weekly, or when
its available balance passes a threshold, to its default payout account.

Every run goes through ``withdrawal_submit`` (KYC, card name, limits, risk, four-eyes) with the idempotency key
``auto-settle:<rule>:<period>``: a rerun of the same period (a second beat, a retried task, two workers) finds
the withdrawal already made and settles nothing twice. A period is a local working day (daily), an ISO week
(weekly: the chosen weekday, or the first working day after it that week when it is a holiday) or a local
hour (threshold).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Merchant
from config.errors import DomainError
from wallets.selectors import wallet_balances
from workdays.selectors import is_working_day

from .fees import policy_current
from .models import SettlementRule, SettlementRun, Speed
from .selectors import payout_account_options
from .services import withdrawal_limits, withdrawal_submit

Schedule = SettlementRule.Schedule


@dataclass(frozen=True)
class RuleInput:
    schedule: str
    run_at: time
    weekday: int = 0
    threshold: int = 0
    keep: int = 0
    speed: str = Speed.STANDARD


def settlement_rule_save(*, merchant_id: int, data: RuleInput, enabled: bool = True) -> SettlementRule:
    """Create or replace the merchant's rule (validated; the money amounts in fen)."""
    problems: dict[str, str] = {}
    if data.schedule not in Schedule.values:
        problems["schedule"] = f"must be one of {Schedule.values}"
    if not 0 <= data.weekday <= 6:
        problems["weekday"] = "0 (Monday) to 6 (Sunday)"
    if data.keep < 0:
        problems["keep"] = "must not be negative"
    if data.schedule == Schedule.THRESHOLD and data.threshold <= 0:
        problems["threshold"] = "a threshold rule needs a threshold above zero"
    if data.speed not in Speed.values:
        problems["speed"] = f"must be one of {Speed.values}"
    if problems:
        raise DomainError("invalid_request", details=problems)
    merchant = Merchant.objects.get(pk=merchant_id)
    if _default_account_id(merchant) is None:
        raise DomainError("settlement_no_account")
    rule, _ = SettlementRule.objects.update_or_create(
        merchant_id=merchant_id,
        defaults={
            "schedule": data.schedule,
            "run_at": data.run_at,
            "weekday": data.weekday,
            "threshold": data.threshold if data.schedule == Schedule.THRESHOLD else 0,
            "keep": data.keep,
            "speed": data.speed,
            "enabled": enabled,
        },
    )
    return rule


def settlement_rule_set_enabled(*, merchant_id: int, enabled: bool) -> SettlementRule:
    rule = SettlementRule.objects.filter(merchant_id=merchant_id).first()
    if rule is None:
        raise DomainError("not_found")
    rule.enabled = enabled
    rule.save(update_fields=["enabled", "updated_at"])
    return rule


def _default_account_id(merchant: Merchant) -> int | None:
    """The merchant's default payout account when money may go to it (else its first usable one)."""
    usable = [o.account for o in payout_account_options(merchant=merchant) if o.usable]
    default = next((a for a in usable if a.is_default), None)
    chosen = default or (usable[0] if usable else None)
    return chosen.pk if chosen is not None else None


def settlement_period(rule: SettlementRule, now: datetime) -> str | None:
    """The period this rule settles at ``now``, or None when nothing is due now."""
    local = timezone.localtime(now)
    today = local.date()
    if rule.schedule == Schedule.THRESHOLD:
        return f"{today.isoformat()}T{local.hour:02d}"
    if local.time() < rule.run_at or not is_working_day(today):
        return None
    if rule.schedule == Schedule.DAILY:
        return today.isoformat()
    year, week, weekday = today.isocalendar()
    if weekday - 1 < rule.weekday:
        return None  # weekly: not before the chosen day; on a holiday, the first working day after it that week
    return f"{year}-W{week:02d}"


def settlement_run_due(*, now: datetime | None = None) -> dict[str, int]:
    """Settle every enabled rule whose period is due and not settled yet (the beat job, every minute)."""
    now = now or timezone.now()
    counts = {"submitted": 0, "skipped": 0}
    for rule in SettlementRule.objects.filter(enabled=True).select_related("merchant").order_by("pk"):
        period = settlement_period(rule, now)
        if period is None or SettlementRun.objects.filter(rule=rule, period=period).exists():
            continue
        outcome = _settle(rule, period, now)
        counts["submitted" if outcome == "submitted" else "skipped"] += outcome is not None
    return counts


def _settle(rule: SettlementRule, period: str, now: datetime) -> str | None:
    available = wallet_balances(merchant_id=rule.merchant_id).available
    if rule.schedule == Schedule.THRESHOLD and available <= rule.threshold:
        return None  # below the threshold: nothing recorded, asked again next hour
    policy = policy_current()
    limits = withdrawal_limits(merchant=rule.merchant, now=now)
    amount = min(available - rule.keep, policy.max_per_withdrawal, limits.per_payout, limits.daily_remaining)
    if amount < policy.min_amount:
        return _record(rule, period, amount=max(amount, 0), outcome="nothing_to_settle")
    account_id = _default_account_id(rule.merchant)
    if account_id is None:
        return _record(rule, period, amount=amount, outcome="refused:settlement_no_account")
    try:
        result = withdrawal_submit(
            merchant_id=rule.merchant_id,
            payout_account_id=account_id,
            amount=amount,
            speed=rule.speed,
            idempotency_key=f"auto-settle:{rule.pk}:{period}",
            source="auto",
            now=now,
        )
    except DomainError as exc:
        return _record(rule, period, amount=amount, outcome=f"refused:{exc.code}")
    return _record(rule, period, amount=result.withdrawal.amount, outcome="submitted", withdrawal=result.withdrawal.pk)


def _record(rule: SettlementRule, period: str, *, amount: int, outcome: str, withdrawal: int | None = None) -> str:
    try:
        with transaction.atomic():
            SettlementRun.objects.create(
                rule=rule, period=period, amount=amount, outcome=outcome[:30], withdrawal_id=withdrawal
            )
    except IntegrityError:
        pass  # a concurrent run recorded this period first; the idempotency key kept it to one withdrawal
    return outcome
