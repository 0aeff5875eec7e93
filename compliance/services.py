from __future__ import annotations

import logging
from datetime import date, datetime, time
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from config.errors import DomainError
from config.pii import mask_account, mask_id_number
from wallets.models import LedgerAccount
from workdays.selectors import add_working_days, next_working_day

from .models import CustodyReconciliation, TransactionReport
from .rules import Finding

log = logging.getLogger(__name__)


def report_deadline(*, kind: str, occurred_at: datetime, established_at: datetime | None = None) -> datetime:
    """When a report must be filed by: the end (23:59:59, Asia/Shanghai) of a working day on the working-day
    calendar. Large-value: LARGE_VALUE_REPORT_DUE_WORKING_DAYS (5) working days after the transaction's day.
    Suspicious: SUSPICIOUS_REPORT_DUE_WORKING_DAYS after the day its grounds were established (default now);
    0 means that day, or the next working day when it is a rest day (PBOC 2016 No.3, as amended in 2018)."""
    if kind == TransactionReport.Kind.LARGE_VALUE:
        due = add_working_days(timezone.localdate(occurred_at), settings.LARGE_VALUE_REPORT_DUE_WORKING_DAYS)
    elif kind == TransactionReport.Kind.SUSPICIOUS:
        start = timezone.localdate(established_at or timezone.now())
        days = settings.SUSPICIOUS_REPORT_DUE_WORKING_DAYS
        due = add_working_days(start, days) if days else next_working_day(start, include_today=True)
    else:
        raise ValueError(f"unknown report kind {kind}")
    return datetime.combine(due, time(23, 59, 59), tzinfo=timezone.get_current_timezone())


def report_draft(
    *,
    kind: str,
    subject_ref: str,
    merchant_id: int,
    merchant_name: str,
    amount: int,
    occurred_at: datetime,
    grounds: list[Any],
    holder_name: str = "",
    id_number: str = "",
    account_number: str = "",
    currency: str = "CNY",
    channel: str = "",
    established_at: datetime | None = None,
) -> TransactionReport | None:
    """Draft a report once per subject and kind (a second call returns None). Its deadline: report_deadline."""
    if kind not in TransactionReport.Kind.values:
        raise ValueError(f"unknown report kind {kind}")
    try:
        with transaction.atomic():
            return TransactionReport.objects.create(
                kind=kind,
                subject_ref=subject_ref,
                merchant_id=merchant_id,
                merchant_name=merchant_name,
                holder_name=holder_name,
                id_number_masked=mask_id_number(id_number) if id_number else "",
                account_masked=mask_account(account_number) if account_number else "",
                amount=amount,
                currency=currency,
                channel=channel,
                occurred_at=occurred_at,
                grounds=grounds,
                deadline=report_deadline(kind=kind, occurred_at=occurred_at, established_at=established_at),
            )
    except IntegrityError:
        return None


def report_from_finding(finding: Finding, *, established_at: datetime | None = None) -> TransactionReport | None:
    """Draft the report a rule (compliance.rules) called for; None when it exists already."""
    t = finding.subject
    return report_draft(
        kind=finding.kind,
        subject_ref=finding.subject_ref,
        merchant_id=t.merchant_id,
        merchant_name=t.merchant_name,
        amount=finding.amount,
        occurred_at=t.occurred_at,
        grounds=finding.grounds,
        holder_name=t.holder_name,
        id_number=t.id_number,
        account_number=t.account_number,
        currency=t.currency,
        channel=t.channel,
        established_at=established_at,
    )


def _report_locked(report_id: int, *, allowed: tuple[str, ...]) -> TransactionReport:
    report = TransactionReport.objects.select_for_update().get(pk=report_id)
    if report.status not in allowed:
        raise DomainError("report_invalid_state", details={"status": report.status, "allowed": list(allowed)})
    return report


def report_review(*, report_id: int, officer: Any, note: str = "", narrative: str | None = None) -> TransactionReport:
    """draft → reviewed: an officer has checked the grounds (and may write the narrative)."""
    if not officer.has_perm("compliance.review_report"):
        raise DomainError("permission_denied")
    with transaction.atomic():
        report = _report_locked(report_id, allowed=(TransactionReport.Status.DRAFT,))
        report.status = TransactionReport.Status.REVIEWED
        report.reviewed_by, report.reviewed_at, report.review_note = officer, timezone.now(), note.strip()
        if narrative is not None:
            report.narrative = narrative.strip()
        report.save(update_fields=["status", "reviewed_by", "reviewed_at", "review_note", "narrative"])
    return report


def report_narrative_edit(*, report_id: int, officer: Any, narrative: str) -> TransactionReport:
    """The officer's narrative, editable until the report is filed or dismissed."""
    if not officer.has_perm("compliance.review_report"):
        raise DomainError("permission_denied")
    with transaction.atomic():
        report = _report_locked(report_id, allowed=(TransactionReport.Status.DRAFT, TransactionReport.Status.REVIEWED))
        report.narrative = narrative.strip()
        report.save(update_fields=["narrative"])
    return report


def report_file(*, report_id: int, officer: Any, note: str = "") -> TransactionReport:
    """reviewed → filed: the report went to the regulator (``note``: e.g. the filing reference). Final."""
    if not officer.has_perm("compliance.file_report"):
        raise DomainError("permission_denied")
    with transaction.atomic():
        report = _report_locked(report_id, allowed=(TransactionReport.Status.REVIEWED,))
        report.status = TransactionReport.Status.FILED
        report.decided_by, report.decided_at, report.decision_note = officer, timezone.now(), note.strip()
        report.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return report


def report_dismiss(*, report_id: int, officer: Any, reason: str) -> TransactionReport:
    """reviewed → dismissed: not reportable, for a stated reason, by an officer other than the reviewer
    (four eyes). Final."""
    if not officer.has_perm("compliance.file_report"):
        raise DomainError("permission_denied")
    if not reason.strip():
        raise DomainError("report_dismiss_reason_required")
    with transaction.atomic():
        report = _report_locked(report_id, allowed=(TransactionReport.Status.REVIEWED,))
        if report.reviewed_by_id == officer.pk:
            raise DomainError("report_same_reviewer")
        report.status = TransactionReport.Status.DISMISSED
        report.decided_by, report.decided_at, report.decision_note = officer, timezone.now(), reason.strip()
        report.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    return report


def custody_reconcile(*, business_date: date | None = None, bank_balance: int | None = None) -> CustodyReconciliation:
    """Segregation check of the day: user funds, platform funds and money in transit against custody."""
    business_date = business_date or timezone.localdate()
    totals = dict(LedgerAccount.objects.values("kind").annotate(total=Sum("balance")).values_list("kind", "total"))
    kinds = LedgerAccount.Kind
    merchant = sum(totals.get(k, 0) or 0 for k in LedgerAccount.MERCHANT_KINDS)
    platform = totals.get(kinds.PLATFORM_FEE_REVENUE, 0) or 0
    in_transit = totals.get(kinds.CHANNEL_CLEARING, 0) or 0
    suspense = totals.get(kinds.SUSPENSE, 0) or 0
    custody = totals.get(kinds.CUSTODY, 0) or 0
    difference = custody - (merchant + platform + in_transit - suspense)
    bank_difference = None if bank_balance is None else bank_balance - custody
    ok = difference == 0 and (bank_difference is None or bank_difference == 0)
    record, _ = CustodyReconciliation.objects.update_or_create(
        business_date=business_date,
        defaults=dict(
            custody_ledger=custody,
            merchant_funds=merchant,
            platform_funds=platform,
            in_transit=in_transit,
            suspense=suspense,
            ledger_difference=difference,
            bank_balance=bank_balance,
            bank_difference=bank_difference,
            ok=ok,
        ),
    )
    if not ok:
        log.error(
            "custody reconciliation %s failed: ledger difference %s, bank difference %s",
            business_date,
            difference,
            bank_difference,
        )
    return record
