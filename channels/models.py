from __future__ import annotations

from django.db import models
from simple_history.models import HistoricalRecords

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
    # Protocol settings: base URL, app id, key material references.
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        ordering = ["priority", "code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def cost_for(self, amount: int) -> int:
        fee = self.fee_fixed + (amount * self.fee_rate_bp + 9999) // 10000
        fee = max(fee, self.fee_min)
        if self.fee_max is not None:
            fee = min(fee, self.fee_max)
        return fee


class SandboxPayout(models.Model):
    """The in-process sandbox channel's own book of payouts it received (what a provider would hold)."""

    order_no = models.CharField(max_length=64, unique=True)
    channel_code = models.CharField(max_length=40)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    account_number = models.CharField(max_length=64)
    holder_name = models.CharField(max_length=100)
    status = models.CharField(max_length=20)
    reason_code = models.CharField(max_length=40, blank=True, default="")
    settle_after = models.DateTimeField(null=True, blank=True)
    submissions = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.order_no} {self.status}"
