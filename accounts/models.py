from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from simple_history.models import HistoricalRecords

from config.crypto import EncryptedTextField, HashField
from config.history import history_user
from config.pii import mask_account, mask_card, mask_id_number, mask_phone


class User(AbstractUser):
    merchant = models.ForeignKey(
        "accounts.Merchant", null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )


class Merchant(models.Model):
    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", "个人"
        BUSINESS = "business", "企业"

    class Category(models.TextChoices):
        GAME_CARDS = "game_cards", "游戏点卡"
        PHONE_TOPUP = "phone_topup", "话费充值"
        ECOMMERCE_CARDS = "ecommerce_cards", "电商卡券"
        MEMBERSHIP = "membership", "会员卡密"

    class Status(models.TextChoices):
        ACTIVE = "active", "正常"
        FROZEN = "frozen", "冻结"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.INDIVIDUAL)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.GAME_CARDS)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    external_ref = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # Sale income stays pending this many days (refund/complaint window) before it becomes available.
    # None: the category default (settlement_freeze_days_for).
    settlement_freeze_days = models.PositiveSmallIntegerField(null=True, blank=True)
    reserve_required = models.BigIntegerField(default=0, help_text="保证金 in fen, kept out of available")
    # Tier (limits) and what it is computed from; see accounts.services.merchant_tier_refresh.
    tier = models.ForeignKey("accounts.MerchantTier", null=True, blank=True, on_delete=models.PROTECT)
    tier_updated_at = models.DateTimeField(null=True, blank=True)
    settled_volume = models.BigIntegerField(default=0, help_text="fen of sales settled so far")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(get_user=history_user)

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"

    @property
    def risk_subject(self) -> str:
        """How risk events name this merchant: the id it came with (replayed history) or our own id."""
        return self.external_ref or str(self.pk)


class KycRecord(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "待审核"
        VERIFIED = "verified", "已认证"
        REJECTED = "rejected", "未通过"

    merchant = models.OneToOneField(Merchant, on_delete=models.PROTECT, related_name="kyc")
    # Identity: read-only in the admin; changed only by accounts.services.kyc_identity_change, which resets
    # verification. The numbers are stored encrypted; the hashes find rows and link accounts.
    real_name = models.CharField(max_length=100)
    id_number = EncryptedTextField()
    id_number_hash = HashField(source="id_number", purpose="id_number", db_index=True)
    phone = EncryptedTextField()
    phone_hash = HashField(source="phone", purpose="phone", db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    level = models.PositiveSmallIntegerField(default=0, help_text="0 none, 1 real name, 2 four elements")
    verified_at = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=30, blank=True, default="", help_text="KYC provider that answered")
    provider_ref = models.CharField(max_length=64, blank=True, default="", help_text="the provider's request id")
    four_elements_card = EncryptedTextField(blank=True, default="", help_text="card of the level-2 check")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        permissions = [
            ("reveal_pii", "Can reveal full identity, phone and account numbers (audited)"),
            ("change_kyc_identity", "Can change a KYC identity (resets verification)"),
        ]

    def __str__(self) -> str:
        return f"KYC {self.real_name} ({self.get_status_display()})"

    @property
    def id_number_masked(self) -> str:
        return mask_id_number(self.id_number)

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone)

    @property
    def four_elements_card_masked(self) -> str:
        return mask_card(self.four_elements_card) if self.four_elements_card else ""


class PayoutAccount(models.Model):
    class Kind(models.TextChoices):
        BANK_CARD = "bank_card", "银行卡"
        ALIPAY = "alipay", "支付宝"
        WECHAT = "wechat", "微信"

    class Status(models.TextChoices):
        ACTIVE = "active", "可用"
        DISABLED = "disabled", "已停用"

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="payout_accounts")
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.BANK_CARD)
    account_number = EncryptedTextField()
    account_number_hash = HashField(source="account_number", purpose="account", db_index=True)
    holder_name = models.CharField(max_length=100)
    bank_code = models.CharField(max_length=20, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "kind", "account_number_hash"], name="uniq_payout_account_per_merchant"
            )
        ]

    @property
    def masked_number(self) -> str:
        return mask_account(self.account_number, self.kind)

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.masked_number} ({self.holder_name})"


class ApiKey(models.Model):
    """Partner API credential. Only a SHA-256 of the secret is stored; the prefix finds the row."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="api_keys")
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    label = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Request signing (accounts.api_auth): when on, every request with this key carries an HMAC-SHA256 made with
    # the signing secret, which is shown once and kept encrypted (the server must compute the same HMAC).
    signing_required = models.BooleanField(default=False)
    signing_secret = EncryptedTextField(blank=True, default="")

    @staticmethod
    def hash_secret(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @staticmethod
    def generate() -> tuple[str, str]:
        prefix = secrets.token_hex(4)
        return prefix, f"sk_{prefix}_{secrets.token_urlsafe(24)}"

    def __str__(self) -> str:
        return f"sk_{self.prefix}_… ({self.merchant_id})"


class Notification(models.Model):
    """A message to a merchant at a key moment (paid, failed, needs verification, ...). Shown in the inbox;
    an SMS/e-mail transport may deliver it too."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=120)
    body = models.TextField(blank=True, default="")
    link = models.CharField(max_length=200, blank=True, default="")
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title


class MerchantTier(models.Model):
    """Account tier: who qualifies (KYC level, account age, settled sales, clean history) and what limits apply.

    Edited in the admin with history. A merchant holds the highest-ranked active tier it qualifies for; the
    platform policy's limits (withdrawals.WithdrawalPolicy) still apply on top."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=40)
    rank = models.PositiveSmallIntegerField(unique=True, help_text="higher is better")
    min_kyc_level = models.PositiveSmallIntegerField(default=1)
    min_account_age_days = models.PositiveIntegerField(default=0)
    min_settled_volume = models.BigIntegerField(default=0, help_text="fen of settled sales")
    require_clean_history = models.BooleanField(
        default=False, help_text="no confirmed fraud and no review rejection in the last 180 days"
    )
    per_payout_limit = models.BigIntegerField(help_text="fen per withdrawal")
    daily_limit = models.BigIntegerField(help_text="fen per local day")
    monthly_limit = models.BigIntegerField(help_text="fen per local calendar month")
    dual_approval_threshold = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="fen; withdrawals at or above need two reviewers whatever risk says (empty: the platform policy's)",
    )
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        ordering = ["rank"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class AuditEvent(models.Model):
    """Append-only record of a sensitive act by staff: a personal number revealed, a KYC identity changed, a
    channel's protocol config proposed, approved or applied. ``detail`` never holds a full personal number."""

    class Action(models.TextChoices):
        PII_REVEALED = "pii_revealed", "查看完整号码"
        KYC_IDENTITY_CHANGED = "kyc_identity_changed", "实名信息变更"

    action = models.CharField(max_length=40, choices=Action.choices, db_index=True)
    actor = models.ForeignKey("accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor_label = models.CharField(max_length=150, blank=True, default="")
    target_type = models.CharField(max_length=60)
    target_id = models.CharField(max_length=40)
    merchant = models.ForeignKey(Merchant, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=255, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.target_type}#{self.target_id} by {self.actor_label}"
