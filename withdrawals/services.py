"""Every change to a withdrawal: submit, review, verify, cancel, and the payout outcomes.

Each service runs in one durable transaction, locks the withdrawal row, checks the state after the lock,
records a WithdrawalEvent and moves money through the ledger in that same transaction. Tasks are enqueued only
after commit; the sweeper re-finds anything whose message was lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import KycRecord, Merchant, MerchantTier, PayoutAccount, User
from accounts.services import merchant_tier_refresh, payout_account_check_receivable
from channels.services import channel_can_serve, channel_route
from compliance.screening import screen_name
from config.errors import DomainError
from config.totp import totp_device_confirmed
from risk.contract import RiskDecision
from risk.models import RiskLabel, StepUpChallenge
from risk.services import risk_assess_withdrawal, risk_label_record
from risk.stepup import (
    stepup_face_complete,
    stepup_face_start,
    stepup_issue,
    stepup_issue_totp,
    stepup_verify,
)
from wallets.services import hold_place

from . import dispatch
from .fees import Quote, arrival_texts, fee_for, policy_current, t1_batch_at
from .lifecycle import (
    withdrawal_event_record,
    withdrawal_hold_release,
    withdrawal_lock,
    withdrawal_notify,
    withdrawal_transition,
)
from .models import RETRYABLE_STATES, Speed, Status, Withdrawal, WithdrawalApproval
from .selectors import withdrawal_risk_ref

log = logging.getLogger(__name__)

MAX_AMOUNT_FEN = 10**12  # 100 亿元: anything larger is a typo or an attack, not a withdrawal
DUAL_REVIEW_REASON = "大额提现，需两位审核员复核"
COUNTED_FOR_LIMITS = ~Q(status__in=[Status.REJECTED, Status.CANCELLED, Status.FAILED])


# --- helpers ----------------------------------------------------------------------------------------------
def _hold_ref(w: Withdrawal) -> str:
    return f"withdrawal:{w.pk}:hold"


def _local_day_start(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _local_month_start(now: datetime) -> datetime:
    return _local_day_start(now).replace(day=1)


def _fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _new_order_no(now: datetime) -> str:
    return f"WD{timezone.localtime(now):%Y%m%d}{secrets.token_hex(6).upper()}"


# --- quote ------------------------------------------------------------------------------------------------
def amount_validate(amount: Any) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise DomainError("invalid_amount", details={"amount": "must be an integer number of fen"})
    if amount <= 0:
        raise DomainError("invalid_amount", details={"amount": "must be greater than 0"})
    if amount > MAX_AMOUNT_FEN:
        raise DomainError("invalid_amount", details={"amount": f"must be at most {MAX_AMOUNT_FEN}"})
    return amount


def withdrawal_quote(*, amount: Any, speed: str, account_kind: str = PayoutAccount.Kind.BANK_CARD) -> Quote:
    """What the merchant sees before confirming: fee, net amount, arrival time and channel."""
    amount = amount_validate(amount)
    if speed not in Speed.values:
        raise DomainError("invalid_request", details={"speed": f"must be one of {Speed.values}"})
    policy = policy_current()
    fee = fee_for(policy=policy, speed=speed, amount=amount)
    route = channel_route(account_kind=account_kind, amount=amount - fee, speed=speed) if amount > fee else None
    zh, en = arrival_texts(speed, timezone.now())
    return Quote(
        amount=amount,
        fee=fee,
        net_amount=amount - fee,
        speed=speed,
        currency=settings.PLATFORM_CURRENCY,
        arrival_text=zh,
        arrival_text_en=en,
        channel_name=route.channel_name if route else "",
        channel_code=route.channel_code if route else "",
        policy_id=policy.pk,
    )


# --- submit -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubmitResult:
    withdrawal: Withdrawal
    created: bool


def withdrawal_submit(
    *,
    merchant_id: int,
    payout_account_id: Any,
    amount: Any,
    speed: str = Speed.STANDARD,
    idempotency_key: str = "",
    expected_fee: int | None = None,
    actor: User | None = None,
    source: str = "web",
    ip: str = "",
    device: str = "",
    now: datetime | None = None,
    external_id: str = "",
    start_payout: bool = True,
    retry_of: int | None = None,
) -> SubmitResult:
    """Validate, quote, check KYC / card name / limits, hold the funds, ask risk, commit, then enqueue.

    Idempotent by ``idempotency_key``: the same key with the same request returns the first withdrawal; with a
    different request it is refused (idempotency_key_reused). Nothing is written when any check fails.
    ``start_payout=False`` (the replay of historical events) decides but never pays, sends codes or notifies."""
    now = now or timezone.now()
    amount = amount_validate(amount)
    if speed not in Speed.values:
        raise DomainError("invalid_request", details={"speed": f"must be one of {Speed.values}"})
    if not isinstance(payout_account_id, int) or isinstance(payout_account_id, bool):
        raise DomainError("invalid_request", details={"payout_account": "must be an integer id"})
    if len(idempotency_key) > 128:
        raise DomainError("invalid_request", details={"idempotency_key": "at most 128 characters"})
    request = {"amount": amount, "payout_account": payout_account_id, "speed": speed}
    fingerprint = _fingerprint({**request, "retry_of": retry_of} if retry_of is not None else request)

    with transaction.atomic(durable=True):
        merchant = Merchant.objects.select_for_update(no_key=True).get(
            pk=merchant_id
        )  # serialises one merchant's submits
        if idempotency_key:
            existing = Withdrawal.objects.filter(merchant=merchant, idempotency_key=idempotency_key).first()
            if existing is not None:
                if existing.request_fingerprint != fingerprint:
                    raise DomainError("idempotency_key_reused", details={"withdrawal": existing.pk})
                return SubmitResult(existing, created=False)
        if merchant.status != Merchant.Status.ACTIVE:
            raise DomainError("merchant_frozen")
        if retry_of is not None:
            _check_retryable(retry_of, merchant_id=merchant.pk)
        account = PayoutAccount.objects.filter(pk=payout_account_id, merchant=merchant).first()
        if account is None:
            raise DomainError("payout_account_invalid", details={"payout_account": "not found among your accounts"})
        payout_account_check_receivable(account=account, merchant=merchant)

        policy = policy_current()
        fee = fee_for(policy=policy, speed=speed, amount=amount)
        if expected_fee is not None and expected_fee != fee:
            raise DomainError("quote_expired", details={"quoted_fee": expected_fee, "fee": fee})
        if amount < policy.min_amount:
            raise DomainError("amount_below_minimum", details={"minimum": policy.min_amount})
        if amount <= fee:
            raise DomainError("amount_not_above_fee", details={"fee": fee})
        if amount > policy.max_per_withdrawal:
            raise DomainError(
                "limit_exceeded", details={"limit": "per_withdrawal", "maximum": policy.max_per_withdrawal}
            )
        today = Withdrawal.objects.filter(COUNTED_FOR_LIMITS, merchant=merchant, created_at__gte=_local_day_start(now))
        usage = today.aggregate(total=Sum("amount"), count=Count("pk"))
        if (usage["count"] or 0) + 1 > policy.daily_count_limit:
            raise DomainError("limit_exceeded", details={"limit": "daily_count", "maximum": policy.daily_count_limit})
        if (usage["total"] or 0) + amount > policy.daily_amount_limit:
            raise DomainError(
                "limit_exceeded",
                details={
                    "limit": "daily_amount",
                    "maximum": policy.daily_amount_limit,
                    "used": usage["total"] or 0,
                },
            )

        if start_payout and not channel_can_serve(account_kind=account.kind, amount=amount - fee, speed=speed):
            raise DomainError(
                "no_channel_for_request", details={"account_kind": account.kind, "speed": speed, "amount": amount}
            )
        limits = _check_tier_limits(merchant, amount=amount, now=now)
        dual_threshold = (
            limits.tier.dual_approval_threshold
            if limits.tier is not None and limits.tier.dual_approval_threshold is not None
            else policy.dual_approval_threshold
        )

        zh, en = arrival_texts(speed, now)
        w = Withdrawal.objects.create(
            pay_not_before=t1_batch_at(now) if speed == Speed.T1 else None,
            merchant=merchant,
            payout_account=account,
            order_no=_new_order_no(now),
            amount=amount,
            fee=fee,
            net_amount=amount - fee,
            currency=settings.PLATFORM_CURRENCY,
            speed=speed,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
            source=source,
            client_ip=ip or None,
            device_id=device[:128],
            required_approvals=2 if amount >= dual_threshold else 1,
            retry_of_id=retry_of,
            quote={
                "fee": fee,
                "net_amount": amount - fee,
                "arrival_text": zh,
                "arrival_text_en": en,
                "policy_id": policy.pk,
                "quoted_fee": expected_fee,
            },
        )
        hold_place(merchant_id=merchant.pk, amount=amount, reference=_hold_ref(w))
        actor_label = "merchant" if source == "web" else source
        withdrawal_event_record(
            w,
            from_status="",
            actor=actor,
            actor_label=actor_label,
            reason="申请成功",
            data={"amount": amount, "fee": fee, "speed": speed},
        )

        decision = risk_assess_withdrawal(
            event={
                "platform_id": w.pk,
                "type": "withdrawal_requested",
                "ts": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "merchant": merchant.risk_subject,
                "withdrawal": external_id or str(w.pk),
                "amount": amount,
                "card": account.account_number,
                "speed": speed,
                "ip": ip,
                "device": device,
            }
        )
        # Sanctions / PEP screening of the payee before any payout: a hit (recorded with its score and list
        # version) sends the withdrawal to review whatever risk said, unless risk blocked it.
        if screen_name(name=account.holder_name, subject_ref=f"withdrawal:{w.pk}", context="payee"):
            reasons = [*decision.reasons, "screening_hit"]
            decision = replace(decision, outcome="block" if decision.outcome == "block" else "review", reasons=reasons)
        _apply_risk(w, decision, actor=actor, start_payout=start_payout)
    return SubmitResult(w, created=True)


# --- tiers and limits -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TierLimits:
    tier: MerchantTier | None
    per_payout: int
    daily_limit: int
    daily_used: int
    monthly_limit: int
    monthly_used: int

    @property
    def daily_remaining(self) -> int:
        return max(0, self.daily_limit - self.daily_used)

    @property
    def monthly_remaining(self) -> int:
        return max(0, self.monthly_limit - self.monthly_used)


def _merchant_tier(merchant: Merchant, now: datetime) -> MerchantTier | None:
    tier = MerchantTier.objects.filter(pk=merchant.tier_id, active=True).first() if merchant.tier_id else None
    return tier or merchant_tier_refresh(merchant=merchant, now=now)


def withdrawal_limits(*, merchant: Merchant, now: datetime | None = None) -> TierLimits:
    """The merchant's tier and what it may still withdraw today and this month (local calendar)."""
    now = now or timezone.now()
    tier = _merchant_tier(merchant, now)
    day, month = _local_day_start(now), _local_month_start(now)
    usage = Withdrawal.objects.filter(COUNTED_FOR_LIMITS, merchant=merchant, created_at__gte=month).aggregate(
        month=Sum("amount"), day=Sum("amount", filter=Q(created_at__gte=day))
    )
    return TierLimits(
        tier=tier,
        per_payout=tier.per_payout_limit if tier else 0,
        daily_limit=tier.daily_limit if tier else 0,
        daily_used=usage["day"] or 0,
        monthly_limit=tier.monthly_limit if tier else 0,
        monthly_used=usage["month"] or 0,
    )


def _check_retryable(withdrawal_id: int, *, merchant_id: int) -> None:
    """A retry is of the merchant's own failed (or returned) withdrawal, and at most once: the first retry
    wins (the merchant row lock serialises this; the one-to-one column refuses a second at the database)."""
    old = Withdrawal.objects.filter(pk=withdrawal_id, merchant_id=merchant_id).first()
    if old is None:
        raise DomainError("not_found", details={"withdrawal": withdrawal_id})
    if old.status not in RETRYABLE_STATES:
        raise DomainError("invalid_state", details={"status": old.status})
    existing = Withdrawal.objects.filter(retry_of_id=old.pk).values_list("pk", flat=True).first()
    if existing is not None:
        raise DomainError("already_retried", details={"withdrawal": old.pk, "retry": existing})


def withdrawal_retry(
    *,
    withdrawal_id: int,
    merchant_id: int,
    payout_account_id: Any,
    idempotency_key: str,
    expected_fee: int | None,
    actor: User | None = None,
    source: str = "web",
    ip: str = "",
    device: str = "",
) -> SubmitResult:
    """One-click retry: a new withdrawal of the same amount and speed, linked to the failed one. The same key
    replays the retry; a second retry of the same withdrawal is refused with already_retried."""
    old = Withdrawal.objects.filter(pk=withdrawal_id, merchant_id=merchant_id).first()
    if old is None:
        raise DomainError("not_found")
    return withdrawal_submit(
        merchant_id=merchant_id,
        payout_account_id=payout_account_id,
        amount=old.amount,
        speed=old.speed,
        idempotency_key=idempotency_key,
        expected_fee=expected_fee,
        actor=actor,
        source=source,
        ip=ip,
        device=device,
        retry_of=old.pk,
    )


def _check_tier_limits(merchant: Merchant, *, amount: int, now: datetime) -> TierLimits:
    limits = withdrawal_limits(merchant=merchant, now=now)
    tier = limits.tier
    if tier is None:
        raise DomainError("kyc_required")
    named = {"tier": tier.code, "tier_name": tier.name}
    if amount > limits.per_payout:
        raise DomainError("limit_exceeded", details={"limit": "tier_per_payout", "maximum": limits.per_payout, **named})
    if limits.daily_used + amount > limits.daily_limit:
        raise DomainError(
            "limit_exceeded",
            details={"limit": "tier_daily", "maximum": limits.daily_limit, "used": limits.daily_used, **named},
        )
    if limits.monthly_used + amount > limits.monthly_limit:
        raise DomainError(
            "limit_exceeded",
            details={"limit": "tier_monthly", "maximum": limits.monthly_limit, "used": limits.monthly_used, **named},
        )
    return limits


# --- step-up ----------------------------------------------------------------------------------------------
def _stepup_start(w: Withdrawal) -> str:
    """Ask the merchant for a second factor: its authenticator app if a user enrolled one, else an SMS code."""
    subject = f"withdrawal:{w.pk}"
    user_ids = list(User.objects.filter(merchant_id=w.merchant_id, is_active=True).values_list("pk", flat=True))
    device = totp_device_confirmed(user_ids=user_ids) if user_ids else None
    if device is not None:
        stepup_issue_totp(subject=subject, merchant_id=w.merchant_id, device_id=device.pk)
        return StepUpChallenge.Method.TOTP
    kyc = KycRecord.objects.get(merchant_id=w.merchant_id)
    stepup_issue(subject=subject, merchant_id=w.merchant_id, phone=kyc.phone)
    return StepUpChallenge.Method.SMS


def withdrawal_stepup_method(*, withdrawal_id: int) -> str:
    """How the open step-up of a withdrawal is to be answered (sms / totp / face), '' if none."""
    challenge = StepUpChallenge.objects.filter(subject=f"withdrawal:{withdrawal_id}").order_by("-created_at").first()
    return challenge.method if challenge is not None else ""


def _apply_risk(w: Withdrawal, decision: RiskDecision, *, actor: User | None, start_payout: bool = True) -> None:
    w.risk_outcome = decision.outcome
    w.risk_score = decision.score
    w.risk_reasons = decision.reasons
    w.risk_explanation = decision.explanation
    w.save(update_fields=["risk_outcome", "risk_score", "risk_reasons", "risk_explanation"])
    data = {"outcome": decision.outcome, "score": decision.score, "reasons": decision.reasons}
    if decision.outcome != "block" and w.required_approvals > 1:
        # At or above the dual-approval threshold two different reviewers decide, whatever risk said.
        withdrawal_transition(
            w, "to_review", actor_label="risk", reason=DUAL_REVIEW_REASON, data={**data, "dual_approval": True}
        )
        return
    if decision.outcome == "block":
        w.failure_code = "risk_blocked"
        withdrawal_transition(
            w, "reject", actor_label="risk", reason="风控拦截", data=data, extra_fields=("failure_code",)
        )
        withdrawal_hold_release(w)
        if start_payout:
            withdrawal_notify(w, "withdrawal_rejected_by_risk")
    elif decision.outcome == "review":
        withdrawal_transition(w, "to_review", actor_label="risk", reason="风控转人工审核", data=data)
    elif decision.outcome == "step_up":
        withdrawal_transition(w, "to_verification", actor_label="risk", reason="需要身份验证", data=data)
        if not start_payout:
            return  # a replay of history decides only: no code is sent to anyone
        if _stepup_start(w) == StepUpChallenge.Method.TOTP:
            withdrawal_notify(w, "withdrawal_verify_totp")
        else:
            withdrawal_notify(w, "withdrawal_verify_sms")
    else:
        withdrawal_transition(w, "approve", actor_label="risk", reason="自动审核通过", data=data)
        if start_payout:
            _payout_start_when_due(w)


def _payout_start_when_due(w: Withdrawal) -> None:
    """An approved withdrawal goes to the worker now, or, for T+1, waits for its batch: the sweeper (a beat job,
    every minute) sends every payout whose batch time has come, so a batch is paid together."""
    if w.pay_not_before is not None and w.pay_not_before > timezone.now():
        w.next_action_at = w.pay_not_before
        w.save(update_fields=["next_action_at", "updated_at"])
        withdrawal_event_record(
            w,
            from_status=w.status,
            actor=None,
            actor_label="system",
            reason=f"T+1：等待 {timezone.localtime(w.pay_not_before):%m-%d %H:%M} 的批量出款",
        )
        return
    dispatch.enqueue_payout(w.pk, seq=w.action_seq)


# --- merchant actions -------------------------------------------------------------------------------------
def withdrawal_verify(*, withdrawal_id: int, merchant_id: int, code: str, actor: User | None = None) -> Withdrawal:
    """Complete a step-up: a correct, fresh, unused code moves the withdrawal on."""
    w = Withdrawal.objects.filter(pk=withdrawal_id, merchant_id=merchant_id).first()
    if w is None:
        raise DomainError("not_found")
    if w.status != Status.AWAITING_VERIFICATION:
        raise DomainError("invalid_state", details={"status": w.status})
    challenge = stepup_verify(subject=f"withdrawal:{w.pk}", code=code)  # commits its own attempt counter
    reason = "动态口令验证通过" if challenge.method == StepUpChallenge.Method.TOTP else "短信验证通过"
    return _verified(withdrawal_id, actor=actor, reason=reason)


def _verified(withdrawal_id: int, *, actor: User | None, reason: str) -> Withdrawal:
    with transaction.atomic(durable=True):
        w = withdrawal_lock(withdrawal_id)
        if w.status != Status.AWAITING_VERIFICATION:
            raise DomainError("invalid_state", details={"status": w.status})
        if w.required_approvals > 1:  # a passed step-up never replaces the two reviewers of a large amount
            withdrawal_transition(
                w, "to_review", actor=actor, actor_label="merchant", reason=f"{reason}；{DUAL_REVIEW_REASON}"
            )
            return w
        withdrawal_transition(w, "approve", actor=actor, actor_label="merchant", reason=reason)
        _payout_start_when_due(w)
    return w


def _awaiting(withdrawal_id: int, merchant_id: int) -> Withdrawal:
    w = Withdrawal.objects.filter(pk=withdrawal_id, merchant_id=merchant_id).first()
    if w is None:
        raise DomainError("not_found")
    if w.status != Status.AWAITING_VERIFICATION:
        raise DomainError("invalid_state", details={"status": w.status})
    return w


def withdrawal_face_start(*, withdrawal_id: int, merchant_id: int) -> StepUpChallenge:
    """Switch the step-up of a withdrawal to a face check (the merchant chose it on the page)."""
    w = _awaiting(withdrawal_id, merchant_id)
    return stepup_face_start(subject=f"withdrawal:{w.pk}", merchant_id=merchant_id)


def withdrawal_face_complete(*, withdrawal_id: int, merchant_id: int, actor: User | None = None) -> Withdrawal:
    """The merchant finished the face check: a pass (asked of the provider, never of the browser) pays out."""
    w = _awaiting(withdrawal_id, merchant_id)
    stepup_face_complete(subject=f"withdrawal:{w.pk}")
    return _verified(withdrawal_id, actor=actor, reason="人脸核验通过")


def withdrawal_resend_code(*, withdrawal_id: int, merchant_id: int) -> None:
    w = Withdrawal.objects.filter(pk=withdrawal_id, merchant_id=merchant_id).first()
    if w is None:
        raise DomainError("not_found")
    if w.status != Status.AWAITING_VERIFICATION:
        raise DomainError("invalid_state", details={"status": w.status})
    _stepup_start(w)


STEPUP_EXHAUSTED_REASON = "验证失败次数过多，转人工审核"


def withdrawal_stepup_exhausted(*, withdrawal_id: int) -> Withdrawal | None:
    """The merchant ran out of step-up guesses (``STEPUP_MAX_FAILURES`` over every code, resends included): no
    more guesses, a reviewer decides. Nothing happens if the withdrawal is no longer awaiting verification."""
    with transaction.atomic(durable=True):
        w = Withdrawal.objects.select_for_update(no_key=True).filter(pk=withdrawal_id).first()
        if w is None or w.status != Status.AWAITING_VERIFICATION:
            return None
        withdrawal_transition(
            w, "to_review", actor_label="risk", reason=STEPUP_EXHAUSTED_REASON, data={"stepup": "exhausted"}
        )
        withdrawal_notify(w, "withdrawal_review")
    return w


def withdrawal_stepup_subject_exhausted(subject: str) -> None:
    """Risk's step-up ran out of guesses for ``subject``; when it is a withdrawal, a reviewer decides (wired to
    ``risk.stepup`` in ``WithdrawalsConfig.ready()``)."""
    kind, _, ref = subject.partition(":")
    if kind == "withdrawal" and ref.isdigit():
        withdrawal_stepup_exhausted(withdrawal_id=int(ref))


def withdrawal_cancel(
    *, withdrawal_id: int, merchant_id: int, actor: User | None = None, actor_label: str = "merchant"
) -> Withdrawal:
    with transaction.atomic(durable=True):
        w = withdrawal_lock(withdrawal_id)
        if w.merchant_id != merchant_id:
            raise DomainError("not_found")
        if w.status not in (Status.PENDING_REVIEW, Status.AWAITING_VERIFICATION, Status.APPROVED):
            raise DomainError("invalid_state", details={"status": w.status})
        withdrawal_transition(w, "cancel", actor=actor, actor_label=actor_label, reason="商户取消")
        withdrawal_hold_release(w)
    return w


# --- review -----------------------------------------------------------------------------------------------
def _require_reviewer(user: User) -> None:
    if not user.has_perm("withdrawals.review_withdrawal"):
        raise DomainError("permission_denied")


def withdrawal_approve(*, withdrawal_id: int, reviewer: User, note: str = "") -> Withdrawal:
    """One reviewer's approval. Amounts at or above the dual-approval threshold need two different reviewers."""
    _require_reviewer(reviewer)
    with transaction.atomic(durable=True):
        w = withdrawal_lock(withdrawal_id)
        if w.status != Status.PENDING_REVIEW:
            raise DomainError("invalid_state", details={"status": w.status})
        if w.approvals.filter(reviewer=reviewer).exists():
            raise DomainError("same_approver")
        WithdrawalApproval.objects.create(withdrawal=w, reviewer=reviewer, note=note[:255])
        given = w.approvals.count()
        if given < w.required_approvals:
            withdrawal_event_record(
                w,
                from_status=w.status,
                actor=reviewer,
                actor_label="reviewer",
                reason=f"第 {given}/{w.required_approvals} 位审核员通过" + (f"：{note}" if note else ""),
            )
            return w
        withdrawal_transition(
            w,
            "approve",
            actor=reviewer,
            actor_label="reviewer",
            reason=note or "人工审核通过",
            data={"approvals": given},
        )
        _label(w, fraud=False, source=RiskLabel.Source.REVIEW_APPROVED)
        _payout_start_when_due(w)
    return w


def _label(w: Withdrawal, *, fraud: bool, source: str) -> None:
    """A reviewer's decision becomes a training label (with the features the decision was made on)."""
    risk_label_record(
        withdrawal_ref=withdrawal_risk_ref(w), merchant_ref=w.merchant.risk_subject, fraud=fraud, source=source
    )


def withdrawal_reject(*, withdrawal_id: int, reviewer: User, reason: str) -> Withdrawal:
    """Reject with a reason; the whole amount, fee included, goes back to available."""
    _require_reviewer(reviewer)
    if not reason.strip():
        raise DomainError("invalid_request", details={"reason": "a rejection needs a reason"})
    with transaction.atomic(durable=True):
        w = withdrawal_lock(withdrawal_id)
        if w.status not in (Status.PENDING_REVIEW, Status.AWAITING_VERIFICATION):
            raise DomainError("invalid_state", details={"status": w.status})
        w.failure_code, w.failure_detail = "rejected_by_review", reason[:255]
        withdrawal_transition(
            w,
            "reject",
            actor=reviewer,
            actor_label="reviewer",
            reason=reason,
            extra_fields=("failure_code", "failure_detail"),
        )
        withdrawal_hold_release(w)
        _label(w, fraud=True, source=RiskLabel.Source.REVIEW_REJECTED)
        withdrawal_notify(w, "withdrawal_rejected_by_review", reason=reason)
    return w
