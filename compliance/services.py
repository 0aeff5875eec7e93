from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from channels.health import channel_alert_raise
from channels.models import ChannelAlert
from config.errors import DomainError
from config.money import yuan_label
from config.pii import mask_account, mask_id_number
from wallets.models import LedgerAccount
from workdays.selectors import add_working_days, next_working_day

from .models import CustodyReconciliation, TransactionReport
from .presenters import grounds_sentences
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
    """Draft a report once per subject and kind (a second call returns None). Its deadline: report_deadline. The
    narrative starts as a draft written from the facts and grounds, for the officer to edit."""
    if kind not in TransactionReport.Kind.values:
        raise ValueError(f"unknown report kind {kind}")
    narrative = (
        f"{merchant_name}（商户 {merchant_id}）{timezone.localtime(occurred_at):%Y-%m-%d %H:%M} "
        f"{subject_ref}，金额 {yuan_label(amount)}"
        + (f"，渠道 {channel}" if channel else "")
        + "。"
        + "".join(grounds_sentences(grounds))
    )
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
                narrative=narrative,
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


@dataclass(frozen=True)
class BankStatement:
    """The custodian bank's closing balance of a day, in fen, and its segregated sub-accounts when it gives them."""

    balance: int
    merchant_funds: int | None = None
    platform_funds: int | None = None
    in_transit: int | None = None


def _bank_apply(record: CustodyReconciliation, bank: BankStatement | None) -> None:
    """Set the bank's figures (None: keep what was entered before) and every difference, bank − ledger."""
    if bank is not None:
        record.bank_balance = bank.balance
        record.bank_merchant_funds = bank.merchant_funds
        record.bank_platform_funds = bank.platform_funds
        record.bank_in_transit = bank.in_transit

    def diff(bank_value: int | None, ledger_value: int) -> int | None:
        return None if bank_value is None else bank_value - ledger_value

    record.bank_difference = diff(record.bank_balance, record.custody_ledger)
    record.merchant_difference = diff(record.bank_merchant_funds, record.merchant_funds)
    record.platform_difference = diff(record.bank_platform_funds, record.platform_funds)
    record.in_transit_difference = diff(record.bank_in_transit, record.in_transit)
    differences = (
        record.bank_difference,
        record.merchant_difference,
        record.platform_difference,
        record.in_transit_difference,
    )
    record.ok = record.ledger_difference == 0 and all(d in (None, 0) for d in differences)


def _custody_alert(record: CustodyReconciliation) -> None:
    parts = [f"账内差额 {yuan_label(record.ledger_difference)}"]
    for label, value in (
        ("银行 − 账面托管", record.bank_difference),
        ("商户资金", record.merchant_difference),
        ("平台资金", record.platform_difference),
        ("通道在途", record.in_transit_difference),
    ):
        if value:
            parts.append(f"{label} {yuan_label(value)}")
    figures = "，".join(parts)
    log.error("custody reconciliation %s failed: %s", record.business_date, figures)
    channel_alert_raise(
        kind=ChannelAlert.Kind.RECONCILIATION,
        title=f"托管户对账不平 {record.business_date}：{figures}",
        subject=f"custody:{record.business_date}",
        detail={
            "business_date": record.business_date.isoformat(),
            "ledger_difference": record.ledger_difference,
            "bank_difference": record.bank_difference,
            "merchant_difference": record.merchant_difference,
            "platform_difference": record.platform_difference,
            "in_transit_difference": record.in_transit_difference,
        },
        severity=ChannelAlert.Severity.CRITICAL,
        dedupe_key=f"custody:{record.business_date}:{figures}"[:120],
    )


def custody_reconcile(
    *, business_date: date | None = None, bank_balance: int | None = None, bank: BankStatement | None = None
) -> CustodyReconciliation:
    """Segregation check of the day: user funds, platform funds and money in transit against custody in the
    ledger, and custody against the bank when its balance is entered (``bank``, or a bank balance entered before
    for the day, which a re-run keeps). A difference raises a critical operations alert."""
    business_date = business_date or timezone.localdate()
    if bank is None and bank_balance is not None:
        bank = BankStatement(balance=bank_balance)
    totals = dict(LedgerAccount.objects.values("kind").annotate(total=Sum("balance")).values_list("kind", "total"))
    kinds = LedgerAccount.Kind
    merchant = sum(totals.get(k, 0) or 0 for k in LedgerAccount.MERCHANT_KINDS)
    platform = totals.get(kinds.PLATFORM_FEE_REVENUE, 0) or 0
    in_transit = totals.get(kinds.CHANNEL_CLEARING, 0) or 0
    suspense = totals.get(kinds.SUSPENSE, 0) or 0
    custody = totals.get(kinds.CUSTODY, 0) or 0
    with transaction.atomic():
        record = CustodyReconciliation.objects.select_for_update().filter(business_date=business_date).first()
        if record is None:
            record = CustodyReconciliation(business_date=business_date)
        record.custody_ledger, record.merchant_funds, record.platform_funds = custody, merchant, platform
        record.in_transit, record.suspense = in_transit, suspense
        record.ledger_difference = custody - (merchant + platform + in_transit - suspense)
        _bank_apply(record, bank)
        record.save()
    if not record.ok:
        _custody_alert(record)
    return record


def custody_bank_balance_enter(
    *, business_date: date, bank: BankStatement, by: Any, source: str = "admin"
) -> CustodyReconciliation:
    """The bank's closing balance of ``business_date`` (from the admin or a statement file) against that day's
    reconciliation: its ledger figures stay as the day's run computed them (a day not yet run is run now)."""
    if not by.has_perm("compliance.enter_bank_balance"):
        raise DomainError("permission_denied")
    if not CustodyReconciliation.objects.filter(business_date=business_date).exists():
        custody_reconcile(business_date=business_date)
    with transaction.atomic():
        record = CustodyReconciliation.objects.select_for_update().get(business_date=business_date)
        _bank_apply(record, bank)
        record.bank_source, record.bank_entered_by, record.bank_entered_at = source[:120], by, timezone.now()
        record.save()
    if not record.ok:
        _custody_alert(record)
    return record


STATEMENT_COLUMNS = ("business_date", "balance", "merchant_funds", "platform_funds", "in_transit")


def yuan_to_fen(text: str) -> int:
    """'1,234.56' or '¥1234.5' → 123456 fen, exactly (Decimal); ValueError for anything else."""
    cleaned = text.strip().replace(",", "").replace("¥", "").replace("￥", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"not an amount in yuan: {text!r}") from None
    if not value.is_finite() or value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValueError(f"not an amount in yuan with at most two decimals: {text!r}")
    return int(value * 100)


def custody_bank_statement_import(*, text: str, by: Any, source: str = "statement.csv") -> list[CustodyReconciliation]:
    """A custodian bank statement as CSV: a header with business_date (YYYY-MM-DD) and balance (yuan), and
    optionally merchant_funds, platform_funds, in_transit; one row per day. Checked whole before anything is
    entered: a bad line is refused with its number."""
    if not by.has_perm("compliance.enter_bank_balance"):
        raise DomainError("permission_denied")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    if "business_date" not in header or "balance" not in header:
        raise DomainError("invalid_request", details={"header": "business_date and balance are required"})
    rows: list[tuple[date, BankStatement]] = []
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        try:
            day = date.fromisoformat(row["business_date"])
            parts = {k: yuan_to_fen(row[k]) if row.get(k) else None for k in STATEMENT_COLUMNS[2:]}
            rows.append((day, BankStatement(balance=yuan_to_fen(row["balance"]), **parts)))
        except (ValueError, KeyError) as exc:
            raise DomainError("invalid_request", details={"line": line, "error": str(exc)}) from None
    if not rows:
        raise DomainError("invalid_request", details={"rows": "the statement has no rows"})
    return [custody_bank_balance_enter(business_date=d, bank=b, by=by, source=source) for d, b in rows]
