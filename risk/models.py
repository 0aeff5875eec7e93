from __future__ import annotations

from django.db import models


class StepUpChallenge(models.Model):
    """A one-time second factor bound to one subject (e.g. "withdrawal:42"). Only a hash of the code is kept."""

    class Method(models.TextChoices):
        SMS = "sms", "短信验证码"
        TOTP = "totp", "动态口令 (TOTP)"
        FACE = "face", "人脸核验"

    subject = models.CharField(max_length=64, db_index=True)
    merchant_id = models.BigIntegerField(db_index=True)
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.SMS)
    code_hash = models.CharField(max_length=64, blank=True, default="")
    destination = models.CharField(max_length=40, blank=True, default="")
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=5)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.get_method_display()} for {self.subject}"


class SmsMessage(models.Model):
    """What the SMS provider was asked to send. The dev backend only records; a real one also delivers."""

    phone = models.CharField(max_length=20)
    text = models.CharField(max_length=300)
    backend = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.phone}: {self.text}"


class RiskState(models.Model):
    """The risk engine's memory: one small JSON row per (kind, key) — merchant, device, IP, /24, card, buyer,
    phone, identity number, withdrawal. Bounded by the engine, so decisions read a handful of rows."""

    kind = models.CharField(max_length=16)
    key = models.CharField(max_length=128)
    data = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="uniq_risk_state")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


class RiskLabel(models.Model):
    """A labelled outcome for training: confirmed fraud, a reviewer's decision, a cleared withdrawal."""

    class Source(models.TextChoices):
        FRAUD_CONFIRMED = "fraud_confirmed", "确认欺诈"
        REVIEW_REJECTED = "review_rejected", "审核驳回"
        REVIEW_APPROVED = "review_approved", "审核通过"
        SETTLED_CLEAN = "settled_clean", "到账无异常"

    withdrawal_ref = models.CharField(max_length=64, db_index=True, help_text="the withdrawal id risk saw")
    merchant_ref = models.CharField(max_length=64, blank=True, default="")
    fraud = models.BooleanField()
    source = models.CharField(max_length=20, choices=Source.choices)
    features = models.JSONField(default=dict, blank=True, help_text="feature values at decision time")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.withdrawal_ref} fraud={self.fraud} ({self.source})"
