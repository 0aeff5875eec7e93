"""The daily compliance job: report drafts for what happened to withdrawals (large-value payouts, suspicious ones),
then today's custody reconciliation. Composed here, above both apps: compliance never imports withdrawals."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, time, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import KycRecord, Merchant
from channels.health import channel_alert_raise
from channels.models import ChannelAlert
from compliance.models import TransactionReport
from compliance.rules import (
    Finding,
    Transaction,
    daily_aggregate_findings,
    large_value_findings,
    structuring_band,
    structuring_findings,
)
from compliance.screening import screen_name, screening_lists_current
from compliance.selectors import reports_due_today, reports_overdue, structuring_cited_refs
from compliance.services import custody_reconcile, report_from_finding
from config.money import yuan_label
from risk.selectors import risk_linked_accounts
from withdrawals.models import Status, Withdrawal

log = logging.getLogger(__name__)

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


def _transaction(w: Withdrawal) -> Transaction:
    return Transaction(
        ref=f"withdrawal:{w.pk}",
        merchant_id=w.merchant_id,
        merchant_name=w.merchant.name,
        amount=w.amount,
        occurred_at=w.paid_at or w.created_at,
        currency=w.currency,
        holder_name=w.payout_account.holder_name,
        id_number=w.merchant.kyc.id_number,
        account_number=w.payout_account.account_number,
        channel=w.channel_code,
    )


def _withdrawals() -> QuerySet[Withdrawal]:
    return Withdrawal.objects.select_related("merchant", "merchant__kyc", "payout_account")


def _linked_merchants(merchants: Iterable[Merchant]) -> dict[int, set[int]]:
    """Merchant id → ids of the merchants risk links to it (a shared device, IP, card, phone or identity)."""
    links: dict[int, set[int]] = {}
    for merchant in merchants:
        subjects = [item["merchant"] for item in risk_linked_accounts(merchant_subject=merchant.risk_subject)]
        if not subjects:
            continue
        ids = {pk for pk, ref in Merchant.objects.filter(external_ref__in=subjects).values_list("pk", "external_ref")}
        ids |= set(
            Merchant.objects.filter(external_ref="", pk__in=[int(s) for s in subjects if s.isdigit()]).values_list(
                "pk", flat=True
            )
        )
        links[merchant.pk] = ids
    return links


def compliance_scan(*, since: datetime | None = None, now: datetime | None = None) -> dict[str, int]:
    """Draft reports (idempotent): for withdrawals changed since ``since`` (default: the last two days) a
    large-value report per paid one at or above the threshold and a suspicious one per blocked / rejected one; a
    daily-aggregate report per merchant and complete day since ``since``; a structuring report per pattern in
    the last STRUCTURING_WINDOW_DAYS."""
    now = now or timezone.now()
    since = since or now - timedelta(days=2)
    counts = {"large_value": 0, "suspicious": 0, "daily_aggregate": 0, "structuring": 0}
    threshold = settings.LARGE_VALUE_THRESHOLD_FEN
    candidates = _withdrawals().filter(updated_at__gte=since, updated_at__lte=now)
    candidates = candidates.filter(
        Q(status=Status.PAID, amount__gte=threshold) | Q(status=Status.REJECTED) | Q(risk_outcome="block")
    )
    for w in candidates.iterator():
        t = _transaction(w)
        if w.status == Status.PAID:
            for finding in large_value_findings([t]):
                counts["large_value"] += report_from_finding(finding, established_at=now) is not None
        grounds = _suspicious_grounds(w)
        if grounds and report_from_finding(
            Finding(TransactionReport.Kind.SUSPICIOUS, t.ref, t, t.amount, grounds), established_at=now
        ):
            counts["suspicious"] += 1

    # Daily aggregates: whole local days only, from the day of ``since`` to yesterday.
    tz = timezone.get_current_timezone()
    first_day = datetime.combine(timezone.localdate(since), time.min, tzinfo=tz)
    today = datetime.combine(timezone.localdate(now), time.min, tzinfo=tz)
    if first_day < today:
        paid = _withdrawals().filter(status=Status.PAID, paid_at__gte=first_day, paid_at__lt=today)
        for finding in daily_aggregate_findings(_transaction(w) for w in paid.iterator()):
            counts["daily_aggregate"] += report_from_finding(finding, established_at=now) is not None

    # Structuring: just-under amounts in the window, by merchant and by linked merchants.
    window_start = now - timedelta(days=settings.STRUCTURING_WINDOW_DAYS)
    low, high = structuring_band()
    under = list(
        _withdrawals()
        .filter(created_at__gte=window_start, created_at__lte=now, amount__gte=low, amount__lt=high)
        .exclude(status=Status.CANCELLED)
        .order_by("created_at", "pk")
    )
    if under:
        links = _linked_merchants({w.merchant_id: w.merchant for w in under}.values())
        findings = structuring_findings(
            [_transaction(w) for w in under], links=links, already_cited=structuring_cited_refs(since=window_start)
        )
        for finding in findings:
            counts["structuring"] += report_from_finding(finding, established_at=now) is not None
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


def screening_kyc_scan() -> int:
    """Every merchant's KYC name against the current sanctions / PEP list versions (a new version screens
    everyone again); each new hit is recorded (ScreeningHit, context kyc) and logged. Returns how many."""
    if not screening_lists_current():
        return 0
    new = 0
    for kyc_id, merchant_id, name in KycRecord.objects.values_list("pk", "merchant_id", "real_name").iterator():
        for hit in screen_name(name=name, subject_ref=f"kyc:{kyc_id}", context="kyc", only_new=True):
            new += 1
            log.warning(
                "screening hit: merchant %s KYC %s matches %s (%s, %s) on %s",
                merchant_id, kyc_id, hit.matched_name, hit.score, hit.matched_on, hit.screening_list,
            )  # fmt: skip
    return new


def compliance_daily() -> dict[str, object]:
    counts = compliance_scan()
    record = custody_reconcile()
    deadlines = compliance_deadlines()
    kyc_hits = screening_kyc_scan()
    return {
        **counts,
        **deadlines,
        "kyc_screening_hits": kyc_hits,
        "custody_ok": record.ok,
        "ledger_difference": record.ledger_difference,
    }
