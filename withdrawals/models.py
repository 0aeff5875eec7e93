from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, transition
from simple_history.models import HistoricalRecords

from config.history import history_user
from config.money import fen_to_yuan


class Status(models.TextChoices):
    SUBMITTED = "submitted", "已提交"
    PENDING_REVIEW = "pending_review", "审核中"
    AWAITING_VERIFICATION = "awaiting_verification", "待验证"
    APPROVED = "approved", "已审核，待出款"
    PROCESSING = "processing", "支付中"
    OUTCOME_UNKNOWN = "outcome_unknown", "支付中（结果确认中）"
    PAID = "paid", "已到账"
    FAILED = "failed", "失败"
    REJECTED = "rejected", "已拒绝"
    CANCELLED = "cancelled", "已取消"
    REVERSED = "reversed", "已退票"


FINAL_STATES = {Status.PAID, Status.FAILED, Status.REJECTED, Status.CANCELLED, Status.REVERSED}
# Money is held (available → held) in exactly these states.
HOLDING_STATES = {
    Status.SUBMITTED,
    Status.PENDING_REVIEW,
    Status.AWAITING_VERIFICATION,
    Status.APPROVED,
    Status.PROCESSING,
    Status.OUTCOME_UNKNOWN,
}
# A failed or returned withdrawal offers one retry (a new withdrawal linked to it).
RETRYABLE_STATES = {Status.FAILED, Status.REVERSED}
CANCELLABLE_STATES = [Status.PENDING_REVIEW, Status.AWAITING_VERIFICATION, Status.APPROVED]


class Speed(models.TextChoices):
    INSTANT = "instant", "极速到账"
    STANDARD = "standard", "普通到账"
    T1 = "t1", "T+1 到账"


class Withdrawal(models.Model):
    """A merchant's request to move money out. Status only changes through withdrawals.services."""

    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, related_name="withdrawals")
    payout_account = models.ForeignKey("accounts.PayoutAccount", on_delete=models.PROTECT, related_name="withdrawals")
    order_no = models.CharField(max_length=40, unique=True, help_text="Our order number at the channel")
    amount = models.BigIntegerField(help_text="fen debited from the wallet")
    fee = models.BigIntegerField(help_text="fen kept as platform fee")
    net_amount = models.BigIntegerField(help_text="fen the payee receives")
    currency = models.CharField(max_length=3, default="CNY")
    speed = models.CharField(max_length=20, choices=Speed.choices, default=Speed.STANDARD)
    status = FSMField(default=Status.SUBMITTED, choices=Status.choices, protected=True, db_index=True)

    idempotency_key = models.CharField(max_length=128, blank=True, default="")
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    source = models.CharField(max_length=10, default="web", help_text="web, api, replay")
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    device_id = models.CharField(max_length=128, blank=True, default="")

    risk_outcome = models.CharField(max_length=20, blank=True, default="")
    risk_score = models.FloatField(null=True, blank=True)  # a risk score, not money
    risk_reasons = models.JSONField(default=list, blank=True)
    risk_explanation = models.JSONField(default=dict, blank=True)
    required_approvals = models.PositiveSmallIntegerField(default=1)

    channel_code = models.CharField(max_length=40, blank=True, default="")
    channel_reference = models.CharField(max_length=100, blank=True, default="")
    # The payout's life at the channels is in PayoutAttempt (one row per routing to a channel, with the routing
    # explanation) and PayoutAnswer (every answer, append-only). These columns are what the worker and the
    # sweeper filter on.
    current_attempt = models.ForeignKey(
        "PayoutAttempt", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    exclusions_reset_after = models.BigIntegerField(
        default=0, help_text="channels left before this PayoutAnswer id may be tried again"
    )
    unknown_count = models.PositiveIntegerField(default=0, help_text="channel calls that gave no definite answer")
    poll_count = models.PositiveIntegerField(default=0, help_text="queries answered 'still processing'")
    awaiting_payee_since = models.DateTimeField(null=True, blank=True, help_text="WeChat: payee asked to confirm")
    escalated_at = models.DateTimeField(null=True, blank=True, help_text="unknown outcome reported to operations")
    # T+1: the batch this withdrawal is paid in; nothing is sent to a channel before it.
    pay_not_before = models.DateTimeField(null=True, blank=True, help_text="T+1: paid in the batch at this time")
    quote = models.JSONField(default=dict, blank=True, help_text="what the merchant was shown and confirmed")
    attempts = models.PositiveIntegerField(default=0)
    next_action_at = models.DateTimeField(null=True, blank=True, db_index=True)
    failure_code = models.CharField(max_length=40, blank=True, default="")
    failure_detail = models.CharField(max_length=255, blank=True, default="")
    stuck_flagged_at = models.DateTimeField(null=True, blank=True)
    # Who talks to the channel for this withdrawal right now. A payout task claims the lease in a short
    # transaction before it calls the channel and gives it back with the answer; a duplicate task finds it
    # taken and does nothing. A killed worker's lease simply expires and the sweeper takes over.
    lease_token = models.CharField(max_length=32, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Fencing for scheduled work: every follow-up task carries the sequence number it was scheduled under; a
    # claim bumps it, so a second copy of the same message (sweeper + chain, redelivery) is stale.
    action_seq = models.PositiveIntegerField(default=0)
    # Requests sent to the current channel and how many of them it definitely refused. Only when every request
    # was refused can nothing be in flight there and nothing have been paid: only then may the payout leave.
    channel_sends = models.PositiveIntegerField(default=0)
    channel_refusals = models.PositiveIntegerField(default=0)
    channel_last_sent_at = models.DateTimeField(null=True, blank=True)
    # A failed (or returned) withdrawal may be retried once; the retry points back at it.
    retry_of = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="retried_by")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    state_changed_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="uniq_withdrawal_idempotency_key",
            ),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="withdrawal_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(fee__gte=0)
                & models.Q(net_amount__gt=0)
                & models.Q(amount=models.F("fee") + models.F("net_amount")),
                name="withdrawal_amount_is_fee_plus_net",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "created_at"]),
            models.Index(fields=["status", "state_changed_at"]),
        ]
        permissions = [
            ("review_withdrawal", "Can approve or reject withdrawals"),
            ("resolve_withdrawal", "Can resolve unknown or stuck withdrawals"),
        ]

    def __str__(self) -> str:
        return f"{self.order_no} {fen_to_yuan(self.amount, grouping=False)} {self.get_status_display()}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATES

    # --- transitions: the graph only. Services lock, check, move money and record the event. ---------------
    @transition(field=status, source=[Status.SUBMITTED, Status.AWAITING_VERIFICATION], target=Status.PENDING_REVIEW)
    def to_review(self) -> None: ...

    @transition(field=status, source=Status.SUBMITTED, target=Status.AWAITING_VERIFICATION)
    def to_verification(self) -> None: ...

    @transition(
        field=status,
        source=[Status.SUBMITTED, Status.PENDING_REVIEW, Status.AWAITING_VERIFICATION],
        target=Status.APPROVED,
    )
    def approve(self) -> None: ...

    @transition(
        field=status,
        source=[Status.SUBMITTED, Status.PENDING_REVIEW, Status.AWAITING_VERIFICATION],
        target=Status.REJECTED,
    )
    def reject(self) -> None: ...

    @transition(field=status, source=CANCELLABLE_STATES, target=Status.CANCELLED)
    def cancel(self) -> None: ...

    @transition(field=status, source=Status.APPROVED, target=Status.PROCESSING)
    def start_processing(self) -> None: ...

    @transition(field=status, source=[Status.PROCESSING, Status.OUTCOME_UNKNOWN], target=Status.OUTCOME_UNKNOWN)
    def mark_unknown(self) -> None: ...

    @transition(field=status, source=Status.OUTCOME_UNKNOWN, target=Status.PROCESSING)
    def confirm_processing(self) -> None:
        """A query answered: the channel has the payout and is still working on it."""

    @transition(field=status, source=[Status.PROCESSING, Status.OUTCOME_UNKNOWN], target=Status.APPROVED)
    def back_to_approved(self) -> None:
        """A definite non-acceptance (reroute, channel paused): the payout goes back to routing."""

    @transition(field=status, source=[Status.PROCESSING, Status.OUTCOME_UNKNOWN], target=Status.PAID)
    def mark_paid(self) -> None: ...

    @transition(
        field=status,
        source=[Status.APPROVED, Status.PROCESSING, Status.OUTCOME_UNKNOWN],
        target=Status.FAILED,
    )
    def mark_failed(self) -> None: ...

    @transition(field=status, source=Status.PAID, target=Status.REVERSED)
    def mark_reversed(self) -> None: ...


class WithdrawalEvent(models.Model):
    """Append-only audit trail of a withdrawal: one row per state change or notable action."""

    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    actor_label = models.CharField(max_length=40, default="system", help_text="merchant, reviewer, worker, api, system")
    from_status = models.CharField(max_length=30, blank=True, default="")
    to_status = models.CharField(max_length=30, blank=True, default="")
    reason = models.CharField(max_length=255, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.withdrawal_id}: {self.from_status} → {self.to_status}"


class WithdrawalApproval(models.Model):
    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.PROTECT, related_name="approvals")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    note = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["withdrawal", "reviewer"], name="one_approval_per_reviewer")]

    def __str__(self) -> str:
        return f"{self.reviewer_id} approved {self.withdrawal_id}"


class WithdrawalPolicy(models.Model):
    """Platform-wide fees and limits, edited in the admin with history. The newest active row applies."""

    name = models.CharField(max_length=60, default="default")
    active = models.BooleanField(default=True)
    min_amount = models.BigIntegerField(default=1000, help_text="fen")
    max_per_withdrawal = models.BigIntegerField(default=10_000_000, help_text="fen")
    daily_amount_limit = models.BigIntegerField(default=20_000_000, help_text="fen per merchant per local day")
    daily_count_limit = models.PositiveIntegerField(default=20)
    dual_approval_threshold = models.BigIntegerField(
        default=5_000_000, help_text="fen; at or above needs two approvers"
    )
    # Fees by speed tier: fixed + rate, clamped to [min, max]. Deducted from the amount.
    standard_fee_fixed = models.BigIntegerField(default=100)
    standard_fee_rate_bp = models.PositiveIntegerField(default=10)
    standard_fee_min = models.BigIntegerField(default=100)
    standard_fee_max = models.BigIntegerField(default=2500)
    instant_fee_fixed = models.BigIntegerField(default=200)
    instant_fee_rate_bp = models.PositiveIntegerField(default=30)
    instant_fee_min = models.BigIntegerField(default=200)
    instant_fee_max = models.BigIntegerField(default=5000)
    t1_fee_fixed = models.BigIntegerField(default=0)
    t1_fee_rate_bp = models.PositiveIntegerField(default=5)
    t1_fee_min = models.BigIntegerField(default=50)
    t1_fee_max = models.BigIntegerField(default=1500)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name_plural = "withdrawal policies"

    def __str__(self) -> str:
        return f"{self.name} ({'active' if self.active else 'inactive'})"


class PayoutAttempt(models.Model):
    """One routing of a withdrawal's payout to a channel, append-only: which channel, under which order number,
    for how much, and why it was chosen (the routing explanation staff read in the admin). Everything the
    channel answered about it is in PayoutAnswer."""

    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.PROTECT, related_name="payout_attempts")
    number = models.PositiveIntegerField(help_text="1 for the first channel, 2 after a failover, …")
    channel_code = models.CharField(max_length=40)
    channel_name = models.CharField(max_length=100, blank=True, default="")
    expected_arrival_seconds = models.PositiveIntegerField(null=True, blank=True)
    order_no = models.CharField(max_length=40)
    amount = models.BigIntegerField(help_text="fen sent to the payee (the withdrawal's net amount)")
    policy = models.CharField(max_length=60, blank=True, default="")
    explanation = models.JSONField(default=dict, blank=True, help_text="the routing decision: candidates, why")
    admission_refused = models.JSONField(
        default=dict, blank=True, help_text="channels that refused to admit it just before (breaker, quota)"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["withdrawal_id", "number"]
        constraints = [models.UniqueConstraint(fields=["withdrawal", "number"], name="one_attempt_number")]

    def __str__(self) -> str:
        return f"{self.order_no} #{self.number} @ {self.channel_code}"


class PayoutAnswer(models.Model):
    """What a channel answered about a payout (or that it gave no definite answer), append-only, in order."""

    class Outcome(models.TextChoices):
        PROCESSING = "processing", "处理中"
        AWAITING_PAYEE = "awaiting_payee", "待收款人确认"
        SUCCEEDED = "succeeded", "已出款"
        FAILED = "failed", "出款失败"
        RETURNED = "returned", "银行退回"
        NOT_FOUND = "not_found", "通道无此订单"
        REFUSED = "refused", "通道未受理"
        UNKNOWN = "unknown", "结果未知"
        QUERY_FAILED = "query_failed", "查询失败"
        PROVEN_NOT_SENT = "proven_not_sent", "此前请求确认未生效"

    withdrawal = models.ForeignKey(Withdrawal, on_delete=models.PROTECT, related_name="payout_answers")
    attempt = models.ForeignKey(PayoutAttempt, null=True, blank=True, on_delete=models.PROTECT, related_name="answers")
    channel_code = models.CharField(max_length=40)
    source = models.CharField(max_length=20, help_text="submit, query, callback, statement, worker")
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    reason_code = models.CharField(max_length=60, blank=True, default="")
    provider_code = models.CharField(max_length=100, blank=True, default="")
    action = models.CharField(max_length=20, blank=True, default="", help_text="what a refusal asked us to do")
    moved_on = models.BooleanField(default=False, help_text="the payout left this channel after this answer")
    channel_reference = models.CharField(max_length=100, blank=True, default="")
    detail = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["withdrawal_id", "id"]
        indexes = [models.Index(fields=["withdrawal", "moved_on"])]

    def __str__(self) -> str:
        return f"{self.withdrawal_id} @ {self.channel_code}: {self.outcome}"


class SettlementRule(models.Model):
    """A merchant's automatic settlement (自动结算): on a schedule, or when the available balance passes a
    threshold, the platform withdraws for it to its default payout account through the normal submission
    (limits, risk, four-eyes). One rule per merchant; the merchant sees, pauses and edits it."""

    class Schedule(models.TextChoices):
        DAILY = "daily", "每个工作日"
        WEEKLY = "weekly", "每周"
        THRESHOLD = "threshold", "可提现余额超过阈值时"

    merchant = models.OneToOneField("accounts.Merchant", on_delete=models.PROTECT, related_name="settlement_rule")
    enabled = models.BooleanField(default=True)
    schedule = models.CharField(max_length=20, choices=Schedule.choices, default=Schedule.DAILY)
    run_at = models.TimeField(help_text="local time of day (daily / weekly)")
    weekday = models.PositiveSmallIntegerField(default=0, help_text="weekly: 0 = Monday … 6 = Sunday")
    threshold = models.BigIntegerField(default=0, help_text="fen; threshold rule: settle when available exceeds it")
    keep = models.BigIntegerField(default=0, help_text="fen left in available after a settlement")
    speed = models.CharField(max_length=20, choices=Speed.choices, default=Speed.STANDARD)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(keep__gte=0, threshold__gte=0), name="settlement_amounts_positive"
            ),
            models.CheckConstraint(condition=models.Q(weekday__lte=6), name="settlement_weekday_range"),
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.schedule} {'on' if self.enabled else 'paused'}"


class SettlementRun(models.Model):
    """One period of a rule, settled (or skipped with the reason): the period key makes a rerun a no-op."""

    rule = models.ForeignKey(SettlementRule, on_delete=models.PROTECT, related_name="runs")
    period = models.CharField(max_length=40, help_text="e.g. 2026-11-30, 2026-W49, 2026-11-30T10")
    withdrawal = models.ForeignKey(Withdrawal, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField(default=0)
    outcome = models.CharField(max_length=30, help_text="submitted, nothing_to_settle, refused: <code>")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["rule", "period"], name="one_settlement_run_per_period")]

    def __str__(self) -> str:
        return f"{self.rule_id} {self.period} {self.outcome}"
