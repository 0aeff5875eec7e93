"""The daily compliance job: report drafts for what happened to withdrawals (large-value payouts, suspicious ones),
then today's custody reconciliation. Composed here, above both apps: compliance never imports withdrawals."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from channels.health import channel_alert_raise
from channels.models import ChannelAlert
from compliance.models import TransactionReport
from compliance.selectors import reports_due_today, reports_overdue
from compliance.services import custody_reconcile, report_draft
from config.money import yuan_label
from withdrawals.models import Status, Withdrawal

# Risk reasons that make a withdrawal reportable as suspicious even when it was stopped.
SUSPICIOUS_REASON_PREFIXES = (
    "structuring",
    "device_farm",
    "ip_cluster",
    "new_account_cashout",
    "account_takeover",
    "fake_identity",
    "id_invalid",
    "fraud",
    "list_",
)


def _suspicious_grounds(w: Withdrawal) -> list[str]:
    grounds = []
    if w.risk_outcome == "block":
        grounds.append("risk_blocked")
    if w.failure_code == "rejected_by_review":
        grounds.append(f"rejected_by_review: {w.failure_detail}")
    grounds.extend(r for r in (w.risk_reasons or []) if r.startswith(SUSPICIOUS_REASON_PREFIXES))
    return grounds


def compliance_scan(*, since: datetime | None = None) -> dict[str, int]:
    """Draft reports for withdrawals since ``since`` (default: the last two days). Idempotent."""
    since = since or timezone.now() - timedelta(days=2)
    counts = {"large_value": 0, "suspicious": 0}
    threshold = settings.LARGE_VALUE_THRESHOLD_FEN
    candidates = (
        Withdrawal.objects.filter(updated_at__gte=since)
        .filter(Q(status=Status.PAID, amount__gte=threshold) | Q(status=Status.REJECTED) | Q(risk_outcome="block"))
        .select_related("merchant", "merchant__kyc", "payout_account")
    )
    for w in candidates.iterator():
        common: dict[str, Any] = dict(
            subject_ref=f"withdrawal:{w.pk}",
            merchant_id=w.merchant_id,
            merchant_name=w.merchant.name,
            amount=w.amount,
            currency=w.currency,
            occurred_at=w.paid_at or w.created_at,
            holder_name=w.payout_account.holder_name,
            id_number=w.merchant.kyc.id_number,
            account_number=w.payout_account.account_number,
        )
        large = w.status == Status.PAID and w.amount >= threshold
        if large and report_draft(
            kind=TransactionReport.Kind.LARGE_VALUE, grounds=[f"amount ≥ {threshold} fen"], **common
        ):
            counts["large_value"] += 1
        grounds = _suspicious_grounds(w)
        if grounds and report_draft(kind=TransactionReport.Kind.SUSPICIOUS, grounds=grounds, **common):
            counts["suspicious"] += 1
    return counts


def compliance_deadlines(*, now: datetime | None = None) -> dict[str, int]:
    """Reports due today and overdue; one critical operations alert per overdue report (raised once)."""
    now = now or timezone.now()
    alerted = 0
    overdue = reports_overdue(now)
    for report in overdue:
        _, created = channel_alert_raise(
            kind=ChannelAlert.Kind.COMPLIANCE_OVERDUE,
            title=(
                f"{report.get_kind_display()} #{report.pk} 逾期未报送: {report.merchant_name} "
                f"{yuan_label(report.amount)}, 期限 {timezone.localtime(report.deadline):%Y-%m-%d %H:%M}"
            ),
            subject=f"report:{report.pk}",
            detail={"report_id": report.pk, "kind": report.kind, "deadline": report.deadline.isoformat()},
            severity=ChannelAlert.Severity.CRITICAL,
            dedupe_key=f"compliance_overdue:{report.pk}",
        )
        alerted += created
    return {"due_today": reports_due_today(now).count(), "overdue": overdue.count(), "alerted": alerted}


def compliance_daily() -> dict[str, object]:
    counts = compliance_scan()
    record = custody_reconcile()
    deadlines = compliance_deadlines()
    return {**counts, **deadlines, "custody_ok": record.ok, "ledger_difference": record.ledger_difference}
