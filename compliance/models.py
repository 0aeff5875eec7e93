"""AML reporting and custody reconciliation. Compliance receives values (ids, amounts) from the orchestrating
app; it never imports withdrawal models."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from config.money import yuan_label


class TransactionReport(models.Model):
    """A large-value (大额交易报告) or suspicious (可疑交易报告) transaction report, drafted automatically
    and filed by a compliance officer."""

    class Kind(models.TextChoices):
        LARGE_VALUE = "large_value", "大额交易报告"
        SUSPICIOUS = "suspicious", "可疑交易报告"

    class Status(models.TextChoices):
        DRAFT = "draft", "待复核"
        REVIEWED = "reviewed", "已复核，待报送"
        FILED = "filed", "已报送"
        DISMISSED = "dismissed", "排除（无需报送）"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True)
    # What the report is about, as the orchestrator described it.
    subject_ref = models.CharField(
        max_length=64, help_text="withdrawal:42, daily:<merchant>:<day> or structuring:<first transaction>"
    )
    merchant_id = models.BigIntegerField(db_index=True)
    merchant_name = models.CharField(max_length=100)
    holder_name = models.CharField(max_length=100, blank=True, default="")
    id_number_masked = models.CharField(max_length=32, blank=True, default="")
    account_masked = models.CharField(max_length=40, blank=True, default="")
    amount = models.BigIntegerField(help_text="fen")
    currency = models.CharField(max_length=3, default="CNY")
    channel = models.CharField(max_length=40, blank=True, default="", help_text="the payment channel that paid it")
    occurred_at = models.DateTimeField()
    grounds = models.JSONField(default=list, blank=True, help_text="why: thresholds crossed, risk reasons")
    deadline = models.DateTimeField(help_text="when it must be filed by")
    narrative = models.TextField(blank=True, default="", help_text="the officer's account of the case")
    # draft → reviewed (reviewed_*) → filed or dismissed (decided_*). A dismissal needs a reason and a second
    # officer: the one who dismisses is never the one who reviewed.
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True, default="")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True, default="", help_text="filing reference, or why it was dismissed")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["status", "deadline"]
        constraints = [models.UniqueConstraint(fields=["kind", "subject_ref"], name="one_report_per_subject_kind")]
        permissions = [
            ("review_report", "Can review AML report drafts"),
            ("file_report", "Can file or dismiss reviewed AML reports"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subject_ref} {yuan_label(self.amount)}"


class CustodyReconciliation(models.Model):
    """A daily statement of segregated funds: what the custody account must hold for merchants, what belongs
    to the platform, what is in transit at channels, against the bank's balance when one is entered."""

    business_date = models.DateField(unique=True)
    custody_ledger = models.BigIntegerField(help_text="custody account balance in the ledger")
    merchant_funds = models.BigIntegerField(help_text="pending + available + held + reserve of all merchants")
    platform_funds = models.BigIntegerField(help_text="fee revenue (platform money, segregated from user funds)")
    in_transit = models.BigIntegerField(help_text="paid out through channels, not yet settled from custody")
    suspense = models.BigIntegerField(default=0)
    ledger_difference = models.BigIntegerField(
        help_text="custody − (merchant + platform + in transit − suspense); must be 0"
    )
    bank_balance = models.BigIntegerField(null=True, blank=True, help_text="the custody bank's statement balance")
    bank_difference = models.BigIntegerField(null=True, blank=True, help_text="bank balance − custody in the ledger")
    # The bank's statement by segregated sub-account, when it gives one; each difference is bank − ledger.
    bank_merchant_funds = models.BigIntegerField(null=True, blank=True)
    bank_platform_funds = models.BigIntegerField(null=True, blank=True)
    bank_in_transit = models.BigIntegerField(null=True, blank=True)
    merchant_difference = models.BigIntegerField(null=True, blank=True)
    platform_difference = models.BigIntegerField(null=True, blank=True)
    in_transit_difference = models.BigIntegerField(null=True, blank=True)
    bank_source = models.CharField(max_length=120, blank=True, default="", help_text="admin, or the statement file")
    bank_entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    bank_entered_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-business_date"]
        permissions = [("enter_bank_balance", "Can enter the custody bank's balance")]

    def __str__(self) -> str:
        return f"{self.business_date} {'OK' if self.ok else 'MISMATCH'}"


class ScreeningList(models.Model):
    """One imported version of a sanctions / PEP list (CSV). Versions are kept; the newest active one screens."""

    name = models.CharField(max_length=100, help_text="e.g. UN consolidated list, internal PEP list")
    version = models.CharField(max_length=60)
    source = models.CharField(max_length=200, blank=True, default="", help_text="the imported file")
    entries_count = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-imported_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="one_screening_list_version")]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class ScreeningEntry(models.Model):
    class Kind(models.TextChoices):
        SANCTION = "sanction", "制裁名单"
        PEP = "pep", "政治公众人物 (PEP)"

    screening_list = models.ForeignKey(ScreeningList, on_delete=models.PROTECT, related_name="entries")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.SANCTION)
    aliases = models.JSONField(default=list, blank=True)
    country = models.CharField(max_length=60, blank=True, default="")
    reference = models.CharField(max_length=100, blank=True, default="", help_text="the list's own id")
    # What matching compares: every name and alias, normalised (keys), and as pinyin.
    match_keys = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return self.name


class ScreeningHit(models.Model):
    """A screened name that matched a list entry: what was screened, against which version, the score."""

    subject_ref = models.CharField(max_length=64, help_text="withdrawal:42 (payee) or kyc:7")
    context = models.CharField(max_length=20, help_text="payee or kyc")
    screened_name = models.CharField(max_length=200)
    entry = models.ForeignKey(ScreeningEntry, on_delete=models.PROTECT, related_name="hits")
    screening_list = models.ForeignKey(ScreeningList, on_delete=models.PROTECT, related_name="hits")
    matched_name = models.CharField(max_length=200, help_text="the list name or alias that matched")
    matched_on = models.CharField(max_length=20, help_text="name (as written) or pinyin")
    score = models.DecimalField(max_digits=5, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject_ref}: {self.screened_name} ≈ {self.matched_name} ({self.score})"


class RetentionArchive(models.Model):
    """One run of the expiry job for one table: the rows past RECORD_RETENTION_YEARS, copied to an archive file
    (JSON lines) once each. The rows themselves stay: the database refuses their deletion."""

    table = models.CharField(max_length=80)
    cutoff = models.DateTimeField(help_text="rows created before this were past retention")
    first_id = models.BigIntegerField()
    last_id = models.BigIntegerField(help_text="the next run starts after this id")
    rows = models.PositiveIntegerField()
    path = models.CharField(max_length=300)
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.table} ≤ {self.last_id} ({self.rows})"
