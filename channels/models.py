from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from config.crypto import EncryptedTextField
from config.history import history_user


class Channel(models.Model):
    """A payout channel as operations configures it. Fees here are what the channel charges *us*."""

    class Adapter(models.TextChoices):
        SANDBOX = "sandbox", "Sandbox (in-process)"
        BANKDIRECT = "bankdirect", "Bank direct (HMAC JSON)"
        ALIPAY = "alipay", "Alipay fund transfer"
        WECHAT = "wechat", "WeChat Pay v3 merchant transfer"

    code = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=100)
    adapter = models.CharField(max_length=20, choices=Adapter.choices)
    enabled = models.BooleanField(default=True)
    paused = models.BooleanField(default=False, help_text="Paused by operations or automatically (funding, config)")
    paused_reason = models.CharField(max_length=255, blank=True, default="")
    priority = models.PositiveSmallIntegerField(default=100, help_text="Lower wins ties")
    supported_account_kinds = models.JSONField(default=list, help_text='e.g. ["bank_card"]')
    fee_fixed = models.BigIntegerField(default=0)
    fee_rate_bp = models.PositiveIntegerField(default=0, help_text="basis points (1/10000)")
    fee_min = models.BigIntegerField(default=0)
    fee_max = models.BigIntegerField(null=True, blank=True)
    expected_arrival_seconds = models.PositiveIntegerField(default=60)
    min_amount = models.BigIntegerField(default=1)
    max_amount = models.BigIntegerField(null=True, blank=True, help_text="per payout, fen")
    daily_amount_limit = models.BigIntegerField(null=True, blank=True)
    daily_count_limit = models.PositiveIntegerField(null=True, blank=True)
    # [{"start": "23:00", "end": "00:30"}] in Asia/Shanghai time, daily.
    maintenance_windows = models.JSONField(default=list, blank=True)
    speed_tiers = models.JSONField(
        default=list, blank=True, help_text='speed tiers served, e.g. ["instant", "standard", "t1"]; empty = all'
    )
    error_budget_bp = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="breaker opens when the channel-side failure rate exceeds this (basis points); "
        "blank = CHANNEL_BREAKER_FAILURE_RATE",
    )
    # Protocol settings: base URL, app id, and key material *by reference* (``<name>_file`` a path, ``<name>_env``
    # an environment variable), never the secret itself. Not editable in the admin: changed only by a
    # ChannelConfigChange that one user proposes and another approves (channels.config_changes).
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        ordering = ["priority", "code"]
        permissions = [
            ("propose_channel_config", "Can propose a change of a channel's endpoint or keys"),
            ("approve_channel_config", "Can approve another user's channel config change"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def cost_for(self, amount: int) -> int:
        fee = self.fee_fixed + (amount * self.fee_rate_bp + 9999) // 10000
        fee = max(fee, self.fee_min)
        if self.fee_max is not None:
            fee = min(fee, self.fee_max)
        return fee

    @property
    def is_bank_direct(self) -> bool:
        return self.adapter == self.Adapter.BANKDIRECT


class ChannelConfigChange(models.Model):
    """A proposed change of a channel's protocol config (endpoint, ids, key references): proposed by one user,
    applied only when a different user approves it. The rows are the audit trail; the channel's own history
    records the applied config with the approver."""

    class Status(models.TextChoices):
        PENDING = "pending", "待复核"
        APPLIED = "applied", "已生效"
        REJECTED = "rejected", "已驳回"
        SUPERSEDED = "superseded", "已失效（配置已被他人修改）"

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="config_changes")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    proposed_config = models.JSONField()
    base_config = models.JSONField(help_text="the channel's config when the change was proposed")
    reason = models.CharField(max_length=255)
    proposed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    proposed_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-proposed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel"], condition=models.Q(status="pending"), name="one_pending_config_change_per_channel"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} config change #{self.pk} ({self.get_status_display()})"


class ChannelQuotaUsage(models.Model):
    """What a channel has taken today (local day): counted when a payout is submitted, released on a definite
    failure. One row per channel per day, updated under a row lock."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="quota_usage")
    day = models.DateField()
    amount = models.BigIntegerField(default=0)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "day"], name="one_quota_row_per_channel_day")]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.day}: {self.count} / {self.amount}"


class ChannelQuotaReservation(models.Model):
    """One payout's share of a channel's daily quota, so a resubmit under the same order number counts once
    and a definite failure releases exactly what was taken."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="quota_reservations")
    order_no = models.CharField(max_length=64)
    day = models.DateField()
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "order_no"], name="one_quota_reservation_per_order")]

    def __str__(self) -> str:
        return f"{self.order_no} {self.amount}{' (released)' if self.released_at else ''}"


class ChannelOutcome(models.Model):
    """One call to a channel and how it went: the health monitor's sliding window reads these rows."""

    class Kind(models.TextChoices):
        SUCCESS = "success", "answered"
        FAILURE = "failure", "definite failure"
        TIMEOUT = "timeout", "no answer (unknown outcome)"

    channel_code = models.CharField(max_length=40)
    at = models.DateTimeField(db_index=True)
    operation = models.CharField(max_length=10, default="submit", help_text="submit or query")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    error_class = models.CharField(max_length=20, blank=True, default="")
    reason_code = models.CharField(max_length=40, blank=True, default="")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    counts_against_channel = models.BooleanField(
        default=False, help_text="a channel-side failure (a merchant's invalid account is not the channel's fault)"
    )

    class Meta:
        indexes = [models.Index(fields=["channel_code", "at"])]

    def __str__(self) -> str:
        return f"{self.channel_code} {self.operation} {self.kind} {self.at:%H:%M:%S}"


class ChannelBreaker(models.Model):
    """Circuit breaker per channel: closed (normal) → open (no new payouts) → half-open (a few probes) → closed."""

    class State(models.TextChoices):
        CLOSED = "closed", "closed"
        OPEN = "open", "open"
        HALF_OPEN = "half_open", "half-open"

    channel = models.OneToOneField(Channel, on_delete=models.CASCADE, related_name="breaker")
    state = models.CharField(max_length=10, choices=State.choices, default=State.CLOSED)
    changed_at = models.DateTimeField()
    # Outcomes before this instant do not count: a closed breaker starts with a clean window.
    window_since = models.DateTimeField()
    probes_admitted = models.PositiveIntegerField(default=0)
    probes_succeeded = models.PositiveIntegerField(default=0)
    opened_count = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=255, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.channel_id}: {self.state}"


class ChannelAlert(models.Model):
    """Something operations must look at: a breaker opened, a channel paused itself, an unknown outcome
    stayed unknown too long, a statement disagreed with us."""

    class Kind(models.TextChoices):
        BREAKER_OPENED = "breaker_opened", "熔断打开"
        BREAKER_CLOSED = "breaker_closed", "熔断恢复"
        CHANNEL_PAUSED = "channel_paused", "通道暂停"
        UNKNOWN_OUTCOME = "unknown_outcome", "结果长时间未知"
        RECONCILIATION = "reconciliation", "对账差异"
        PAID_ELSEWHERE = "paid_elsewhere", "通道出款与我方记录不符"
        COMPLIANCE_OVERDUE = "compliance_overdue", "监管报告逾期未报送"

    class Severity(models.TextChoices):
        INFO = "info", "info"
        WARNING = "warning", "warning"
        CRITICAL = "critical", "critical"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    channel_code = models.CharField(max_length=40, blank=True, default="")
    subject = models.CharField(max_length=80, blank=True, default="", help_text="e.g. an order number")
    title = models.CharField(max_length=200)
    detail = models.JSONField(default=dict, blank=True)
    # Raising an alert with a key that exists already is a no-op: "alert once".
    dedupe_key = models.CharField(max_length=120, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dedupe_key"], condition=~models.Q(dedupe_key=""), name="uniq_channel_alert_dedupe_key"
            )
        ]

    def __str__(self) -> str:
        return self.title


class CallbackReceipt(models.Model):
    """A provider notification we accepted, by the provider's own notification id: a replay is refused."""

    channel_code = models.CharField(max_length=40)
    notify_id = models.CharField(max_length=128)
    order_no = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=20, blank=True, default="")
    outcome = models.CharField(max_length=40, blank=True, default="", help_text="applied, ignored, unknown_order")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel_code", "notify_id"], name="one_receipt_per_notification")
        ]

    def __str__(self) -> str:
        return f"{self.channel_code} {self.notify_id}"


class StatementImport(models.Model):
    """One channel's daily statement, imported and matched against our payouts."""

    channel_code = models.CharField(max_length=40)
    date = models.DateField()
    imported_at = models.DateTimeField()
    line_count = models.PositiveIntegerField(default=0)
    matched_count = models.PositiveIntegerField(default=0)
    difference_count = models.PositiveIntegerField(default=0)
    total_amount = models.BigIntegerField(default=0, help_text="fen, sum of the statement lines")

    class Meta:
        ordering = ["-date", "channel_code"]
        constraints = [models.UniqueConstraint(fields=["channel_code", "date"], name="one_statement_per_channel_day")]

    def __str__(self) -> str:
        return f"{self.channel_code} {self.date}"


class StatementDifference(models.Model):
    class Kind(models.TextChoices):
        MISSING_ON_OUR_SIDE = "missing_on_our_side", "我方无此订单"
        MISSING_ON_THEIRS = "missing_on_theirs", "通道无此订单"
        AMOUNT_MISMATCH = "amount_mismatch", "金额不符"
        STATUS_MISMATCH = "status_mismatch", "状态不符"

    statement = models.ForeignKey(StatementImport, on_delete=models.CASCADE, related_name="differences")
    channel_code = models.CharField(max_length=40)
    order_no = models.CharField(max_length=64)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    our_status = models.CharField(max_length=20, blank=True, default="")
    their_status = models.CharField(max_length=20, blank=True, default="")
    our_amount = models.BigIntegerField(null=True, blank=True)
    their_amount = models.BigIntegerField(null=True, blank=True)
    channel_reference = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True, default="")
    resolution = models.CharField(max_length=40, blank=True, default="")
    note = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["resolved_at", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["statement", "order_no", "kind"], name="one_difference_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.order_no} {self.kind}"


class OpsDashboard(ChannelAlert):
    """Admin index entry for the operations page (/admin/ops/)."""

    class Meta:
        proxy = True
        verbose_name = "运营看板 (operations)"
        verbose_name_plural = "运营看板 (operations)"


class SandboxPayout(models.Model):
    """The in-process sandbox channel's own book of payouts it received (what a provider would hold)."""

    order_no = models.CharField(max_length=64, unique=True)
    channel_code = models.CharField(max_length=40)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    account_number = EncryptedTextField()
    holder_name = models.CharField(max_length=100)
    status = models.CharField(max_length=20)
    reason_code = models.CharField(max_length=40, blank=True, default="")
    settle_after = models.DateTimeField(null=True, blank=True)
    submissions = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.order_no} {self.status}"
