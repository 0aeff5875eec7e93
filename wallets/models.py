"""Double-entry ledger.

Entry amounts are signed, debit positive. Every transfer's entries sum to zero per currency. Each ledger
account has a normal side; its cached ``balance`` is kept in normal-side terms (a merchant's available balance
is positive when we owe the merchant money) and equals ``side * sum(entries)``, which ``ledger_check`` verifies.
Entries are append-only: database triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

CREDIT_NORMAL = -1
DEBIT_NORMAL = 1


class LedgerAccount(models.Model):
    class Kind(models.TextChoices):
        MERCHANT_PENDING = "merchant_pending", "待结算"
        MERCHANT_AVAILABLE = "merchant_available", "可提现"
        MERCHANT_HELD = "merchant_held", "提现冻结"
        MERCHANT_RESERVE = "merchant_reserve", "保证金"
        PLATFORM_FEE_REVENUE = "platform_fee_revenue", "手续费收入"
        CUSTODY = "custody", "备付金存管"
        CHANNEL_CLEARING = "channel_clearing", "通道清算"
        SUSPENSE = "suspense", "挂账"

    MERCHANT_KINDS = (
        Kind.MERCHANT_PENDING,
        Kind.MERCHANT_AVAILABLE,
        Kind.MERCHANT_HELD,
        Kind.MERCHANT_RESERVE,
    )
    NORMAL_SIDE = {
        Kind.MERCHANT_PENDING: CREDIT_NORMAL,
        Kind.MERCHANT_AVAILABLE: CREDIT_NORMAL,
        Kind.MERCHANT_HELD: CREDIT_NORMAL,
        Kind.MERCHANT_RESERVE: CREDIT_NORMAL,
        Kind.PLATFORM_FEE_REVENUE: CREDIT_NORMAL,
        Kind.CHANNEL_CLEARING: CREDIT_NORMAL,
        Kind.CUSTODY: DEBIT_NORMAL,
        Kind.SUSPENSE: DEBIT_NORMAL,
    }

    kind = models.CharField(max_length=32, choices=Kind.choices)
    merchant = models.ForeignKey(
        "accounts.Merchant", null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_accounts"
    )
    # Who the account belongs to, as one non-null key so uniqueness holds on every database:
    # "m<merchant id>" for a merchant's accounts, "channel:<code>" for clearing, "platform" otherwise.
    scope = models.CharField(max_length=64)
    currency = models.CharField(max_length=3, default="CNY")
    balance = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "scope", "currency"],
                name="uniq_ledger_account",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["merchant_pending", "merchant_available", "merchant_held", "merchant_reserve"])
                | Q(balance__gte=0),
                name="merchant_balances_non_negative",
            ),
        ]

    @property
    def normal_side(self) -> int:
        return self.NORMAL_SIDE[self.Kind(self.kind)]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.scope} · {self.currency}"


class Transfer(models.Model):
    class Kind(models.TextChoices):
        SALE_SETTLEMENT = "sale_settlement", "销售结算"
        RELEASE = "release", "解冻待结算"
        HOLD = "hold", "提现冻结"
        POST = "post", "提现出款"
        VOID = "void", "解除冻结"
        REVERSE = "reverse", "冲正"
        RESERVE = "reserve", "保证金调整"
        CHANNEL_SETTLEMENT = "channel_settlement", "通道结算"
        ADJUSTMENT = "adjustment", "调账"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    # Idempotency: one transfer per business reference (e.g. "sale:o_123", "withdrawal:42:hold").
    reference = models.CharField(max_length=128, unique=True)
    description = models.CharField(max_length=255, blank=True, default="")
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    # Sale settlements become available at this time (release_due moves them); null for others.
    available_at = models.DateTimeField(null=True, blank=True, db_index=True)
    released = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.reference}"


class Entry(models.Model):
    transfer = models.ForeignKey(Transfer, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.BigIntegerField(help_text="debit positive, credit negative, fen")
    currency = models.CharField(max_length=3, default="CNY")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "entries"
        constraints = [models.CheckConstraint(condition=~Q(amount=0), name="entry_amount_non_zero")]
        indexes = [models.Index(fields=["account", "created_at"])]

    def __str__(self) -> str:
        return f"{self.amount:+d} {self.currency} → {self.account_id}"
