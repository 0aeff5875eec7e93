"""Replay a historical event stream (the shared risk benchmark's format) through the live services.

Each event is applied with its own ``ts`` as "now", strictly in file order, through the same services a live
merchant's actions go through: registration and KYC, logins, phone changes, card binding, sale settlement,
withdrawal submission (which asks risk for its decision, holds the money and records the withdrawal, but never
pays: ``start_payout=False``), and post-hoc fraud confirmation. One decision line per withdrawal comes out.

A withdrawal the platform itself refuses before risk is asked (no verified KYC, a card in someone else's name,
…) is written as ``block`` with the refusal code as its reason: that is what the merchant would experience.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.db import connection, transaction

from accounts.models import KycRecord, Merchant, MerchantTier
from accounts.services import (
    id_number_validate,
    kyc_verify,
    login_record,
    merchant_register,
    payout_account_add,
    payout_account_find,
    phone_change,
    tiers_active,
)
from config.errors import DomainError
from risk.learning import risk_learning_loop_run
from risk.services import risk_feedback
from wallets.services import merchant_sale_settle
from withdrawals.models import Withdrawal, WithdrawalPolicy
from withdrawals.services import withdrawal_submit

REPLAY_POLICY = "replay"


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: not JSON ({exc})") from None
            if not isinstance(event, dict) or "type" not in event or "merchant" not in event or "ts" not in event:
                raise ValueError(f"{path}:{line_no}: an event needs type, ts and merchant")
            yield event


def replay_policy_activate() -> None:
    """Historical balances are settled money and limits are not what the replay measures: a permissive
    policy (no fee, no minimum, no daily caps) makes every refusal in the output a risk or identity decision.

    Tier limits are lifted too (every tier's per-payout, daily and monthly limit made effectively unlimited in
    the replay database). The benchmark measures risk decisions; tiers are computed from account age and
    settled volume measured by the wall clock and the ledger, not by the events' history, so a replay would
    otherwise refuse ordinary big merchants with limit_exceeded and score that as a risk "block". KYC level
    gating still applies (an invalid identity number cannot withdraw at all)."""
    WithdrawalPolicy.objects.filter(active=True).exclude(name=REPLAY_POLICY).update(active=False)
    WithdrawalPolicy.objects.update_or_create(
        name=REPLAY_POLICY,
        defaults=dict(
            active=True,
            min_amount=1,
            max_per_withdrawal=10**12,
            daily_amount_limit=10**14,
            daily_count_limit=10**6,
            standard_fee_fixed=0,
            standard_fee_rate_bp=0,
            standard_fee_min=0,
            standard_fee_max=0,
            instant_fee_fixed=0,
            instant_fee_rate_bp=0,
            instant_fee_min=0,
            instant_fee_max=0,
            t1_fee_fixed=0,
            t1_fee_rate_bp=0,
            t1_fee_min=0,
            t1_fee_max=0,
        ),
    )
    tiers_active()  # seeds the default tiers if the table is empty
    MerchantTier.objects.update(per_payout_limit=10**14, daily_limit=10**14, monthly_limit=10**14)


@dataclass
class ReplayStats:
    events: int = 0
    withdrawals: int = 0
    refused: int = 0
    seconds: float = 0.0
    decision_ms: list[float] = field(default_factory=list)
    by_decision: dict[str, int] = field(default_factory=dict)


class Replayer:
    def __init__(self, out: IO[str], *, learning_loop: bool = False) -> None:
        self.out = out
        # Run the learning loop once per event day (as the nightly job would), with the event time as now.
        self.learning_loop = learning_loop
        self.loop_day = ""
        self.merchants: dict[str, Merchant] = {}
        self.cards: dict[tuple[int, str], int] = {}
        self.stats = ReplayStats()

    def merchant(self, ref: str) -> Merchant:
        """The merchant of an event; the replay is the only writer, so the instance is cached."""
        merchant = self.merchants.get(ref)
        if merchant is None:
            merchant = Merchant.objects.filter(external_ref=ref).first()
            if merchant is None:
                raise ValueError(f"event for merchant {ref} before its registration")
            self.merchants[ref] = merchant
        return merchant

    def apply(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        now = parse_ts(event["ts"])
        self.stats.events += 1
        if self.learning_loop and event["ts"][:10] != self.loop_day:
            if self.loop_day:
                with transaction.atomic():
                    risk_learning_loop_run(now=now)
            self.loop_day = event["ts"][:10]
        if kind == "merchant_registered":
            self.register(event, now)
        elif kind == "login":
            login_record(
                merchant=self.merchant(event["merchant"]),
                ip=event.get("ip", ""),
                device=event.get("device", ""),
                now=now,
            )
        elif kind == "phone_changed":
            phone_change(
                merchant=self.merchant(event["merchant"]),
                phone=event["phone"],
                ip=event.get("ip", ""),
                device=event.get("device", ""),
                now=now,
            )
        elif kind == "bank_card_bound":
            merchant = self.merchant(event["merchant"])
            account = payout_account_add(
                merchant=merchant,
                account_number=event["card"],
                holder_name=event["holder_name"],
                bank_code=event.get("bank", ""),
                ip=event.get("ip", ""),
                device=event.get("device", ""),
                now=now,
            )
            self.cards[(merchant.pk, account.account_number)] = account.pk
        elif kind == "sale_credited":
            merchant_sale_settle(
                merchant_id=self.merchant(event["merchant"]).pk,
                order_ref=event["order"],
                amount=int(event["amount"]),
                buyer=event.get("buyer", ""),
                now=now,
            )
        elif kind == "withdrawal_requested":
            self.withdraw(event, now)
        elif kind == "fraud_confirmed":
            risk_feedback(withdrawal_ref=event["withdrawal"], merchant_ref=event["merchant"], ts=event["ts"])
        # Unknown event types are ignored, as a live platform ignores a provider's new notification kinds.

    def register(self, event: dict[str, Any], now: datetime) -> None:
        with transaction.atomic():
            reg = merchant_register(
                name=f"{event.get('name', '')}的店铺",
                kind=event.get("kind", "individual"),
                category=event.get("category", "game_cards"),
                real_name=event.get("name", ""),
                id_number=event.get("id_number", ""),
                phone=event.get("phone", ""),
                external_ref=event["merchant"],
                ip=event.get("ip", ""),
                device=event.get("device", ""),
                validate_id=False,
                now=now,
            )
            merchant = reg.merchant
            # Historical balances are settled money: no freeze window on replayed sales.
            Merchant.objects.filter(pk=merchant.pk).update(settlement_freeze_days=0)
            merchant.settlement_freeze_days = 0
            try:
                id_number_validate(merchant.kyc.id_number)
            except DomainError:
                KycRecord.objects.filter(merchant=merchant).update(status=KycRecord.Status.REJECTED)
            else:
                kyc_verify(merchant=merchant, now=now)
        self.merchants[event["merchant"]] = merchant

    def withdraw(self, event: dict[str, Any], now: datetime) -> None:
        merchant = self.merchant(event["merchant"])
        wid = event["withdrawal"]
        account_id = self.cards.get((merchant.pk, event.get("card", "")))
        if account_id is None:
            found = payout_account_find(merchant=merchant, account_number=event.get("card", ""))
            account_id = found.pk if found else -1
        started = time.perf_counter()
        try:
            result = withdrawal_submit(
                merchant_id=merchant.pk,
                payout_account_id=account_id,
                amount=int(event["amount"]),
                speed=event.get("speed", "standard")
                if event.get("speed") in ("instant", "standard", "t1")
                else "standard",
                idempotency_key=wid,
                source="replay",
                ip=event.get("ip", ""),
                device=event.get("device", ""),
                now=now,
                external_id=wid,
                start_payout=False,
            )
            w: Withdrawal = result.withdrawal
            decision = {"withdrawal": wid, "decision": w.risk_outcome, "score": w.risk_score, "reasons": w.risk_reasons}
        except DomainError as exc:
            self.stats.refused += 1
            decision = {"withdrawal": wid, "decision": "block", "score": 100.0, "reasons": [exc.code]}
        self.stats.decision_ms.append((time.perf_counter() - started) * 1000)
        self.stats.withdrawals += 1
        self.stats.by_decision[decision["decision"]] = self.stats.by_decision.get(decision["decision"], 0) + 1
        self.out.write(json.dumps(decision, ensure_ascii=False) + "\n")


def replay(events: Iterable[dict[str, Any]], out: IO[str], *, learning_loop: bool = False) -> ReplayStats:
    if connection.vendor == "postgresql":
        # A batch import: each event still commits on its own, but need not wait for the WAL flush.
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO OFF")
    replay_policy_activate()
    replayer = Replayer(out, learning_loop=learning_loop)
    started = time.perf_counter()
    for event in events:
        replayer.apply(event)
    replayer.stats.seconds = time.perf_counter() - started
    return replayer.stats
