from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from config.crypto import EncryptedTextField, HashField
from config.history import history_user
from config.pii import mask_phone


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
    # Face check: the provider's session and its last known result (pending / passed / failed).
    provider_status = models.CharField(max_length=10, blank=True, default="")

    def __str__(self) -> str:
        return f"{self.get_method_display()} for {self.subject}"


class FaceCheckSession(models.Model):
    """The sandbox face-check provider's own book (a real provider keeps this on its side)."""

    session_id = models.CharField(max_length=40, unique=True)
    subject = models.CharField(max_length=64)
    status = models.CharField(max_length=10, default="pending")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.session_id} {self.status}"


class SmsMessage(models.Model):
    """What the SMS provider was asked to send: the phone encrypted (look it up by ``phone_hash``, the same keyed
    hash as ``KycRecord.phone_hash``) and the text with the code masked."""

    merchant_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    phone = EncryptedTextField()
    phone_hash = HashField(source="phone", purpose="phone", db_index=True)
    text = models.CharField(max_length=300)
    backend = models.CharField(max_length=20)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone)

    def __str__(self) -> str:
        return f"{self.phone_masked}: {self.text}"


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

    class Meta:
        constraints = [models.UniqueConstraint(fields=["withdrawal_ref", "source"], name="one_label_per_source")]

    def __str__(self) -> str:
        return f"{self.withdrawal_ref} fraud={self.fraud} ({self.source})"


class RiskListEntry(models.Model):
    """A high-risk IP, device, card, identity number or phone. Active until ``expires_at`` (never if empty).

    Hits are looked up at decision time (``risk.services``) and passed to the engine: a listed device, card or
    identity number blocks, a phone sends to review, an IP adds score; entries the learning loop made only add
    score whatever their kind."""

    class Kind(models.TextChoices):
        IP = "ip", "IP"
        DEVICE = "device", "设备"
        CARD = "card", "银行卡"
        ID_NUMBER = "id_number", "身份证号"
        PHONE = "phone", "手机号"

    class Source(models.TextChoices):
        MANUAL = "manual", "人工"
        LEARNING_LOOP = "learning_loop", "学习闭环"
        FRAUD_FEEDBACK = "fraud_feedback", "确认欺诈"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    value = models.CharField(max_length=128)
    reason = models.CharField(max_length=255)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.MANUAL)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="empty: never expires")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        verbose_name = "high-risk list entry"
        verbose_name_plural = "high-risk list (高风险名单)"
        indexes = [models.Index(fields=["kind", "value"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.value} ({self.get_source_display()})"


class RuleSetVersion(models.Model):
    """A rule set as data (``RuleSet.to_dict()``). One active version decides; one shadow version, if any, is
    evaluated beside it and recorded in the explanation, never changing the outcome."""

    class Status(models.TextChoices):
        DRAFT = "draft", "草稿"
        ACTIVE = "active", "生效"
        SHADOW = "shadow", "影子运行"
        RETIRED = "retired", "已停用"

    version = models.CharField(max_length=40, unique=True)
    rules = models.JSONField(help_text="RuleSet.to_dict(): version, thresholds, rules")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="active"), name="one_active_ruleset"),
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="shadow"), name="one_shadow_ruleset"),
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.get_status_display()})"


class ModelVersion(models.Model):
    """A trained fraud-score artifact (``ModelArtifact.to_dict()``) with its held-out report."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "候选"
        ACTIVE = "active", "生效"
        RETIRED = "retired", "已停用"

    version = models.CharField(max_length=40, unique=True)
    artifact = models.JSONField()
    metrics = models.JSONField(default=dict, blank=True, help_text="held-out report and training summary")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    trained_on = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords(get_user=history_user)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="active"), name="one_active_model")
        ]

    def __str__(self) -> str:
        return f"{self.version} ({self.get_status_display()})"


class RiskDecisionLog(models.Model):
    """Every withdrawal decision with the full feature vector it was made on: labels join here for training,
    and the learning loop reads who withdrew from which IP and device."""

    withdrawal_ref = models.CharField(max_length=64, db_index=True)
    withdrawal_id = models.BigIntegerField(null=True, blank=True, help_text="our withdrawal id, if any")
    merchant_ref = models.CharField(max_length=64)
    ts = models.DateTimeField(db_index=True, help_text="decision time (the event's time)")
    outcome = models.CharField(max_length=10)
    score = models.FloatField()
    ruleset_version = models.CharField(max_length=40, blank=True, default="")
    model_version = models.CharField(max_length=40, blank=True, default="")
    shadow_outcome = models.CharField(max_length=10, blank=True, default="")
    ip = models.CharField(max_length=64, blank=True, default="")
    device = models.CharField(max_length=128, blank=True, default="")
    features = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"{self.withdrawal_ref}: {self.outcome} {self.score}"


class LearningLoopRun(models.Model):
    """One run of the learning loop and its report (shared IPs / devices, labels and list entries made)."""

    ran_at = models.DateTimeField()
    window_start = models.DateTimeField()
    summary = models.JSONField(default=dict)

    class Meta:
        ordering = ["-ran_at"]

    def __str__(self) -> str:
        return f"learning loop {self.ran_at:%Y-%m-%d %H:%M}"
