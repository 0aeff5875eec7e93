from __future__ import annotations

import pytest
from django.core.management import call_command

from compliance.models import CustodyReconciliation, TransactionReport
from compliance.services import custody_reconcile, report_dismiss, report_file, report_review
from config.errors import DomainError
from operations.compliance_jobs import compliance_scan
from risk.contract import RiskDecision
from tests.factories import reviewer
from withdrawals.services import withdrawal_approve, withdrawal_submit

pytestmark = pytest.mark.django_db(transaction=True)


def submit(merchant, amount, monkeypatch, outcome="allow", reasons=()):
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda event: RiskDecision(outcome=outcome, score=10, reasons=list(reasons)),
    )
    account = merchant.payout_accounts.get(is_default=True)
    return withdrawal_submit(merchant_id=merchant.pk, payout_account_id=account.pk, amount=amount).withdrawal


def test_large_value_payouts_get_one_report_each(merchant_alice, monkeypatch, settings):
    settings.LARGE_VALUE_THRESHOLD_FEN = 5_000_000
    big = submit(merchant_alice, 5_000_000, monkeypatch)
    submit(merchant_alice, 4_999_999, monkeypatch)
    nothing = {"large_value": 0, "suspicious": 0, "daily_aggregate": 0, "structuring": 0}
    assert compliance_scan() == nothing  # not paid yet: two reviewers first
    for name in ("rita", "ron"):
        withdrawal_approve(withdrawal_id=big.pk, reviewer=reviewer(name))
    assert compliance_scan() == {**nothing, "large_value": 1}
    assert compliance_scan() == nothing  # idempotent
    report = TransactionReport.objects.get()
    assert (report.kind, report.subject_ref, report.amount) == ("large_value", f"withdrawal:{big.pk}", 5_000_000)
    assert "*" in report.account_masked and report.id_number_masked.startswith(merchant_alice.kyc.id_number[:3])


def test_blocked_structuring_is_reported_as_suspicious(merchant_alice, monkeypatch):
    submit(merchant_alice, 4_990_000, monkeypatch, outcome="block", reasons=["structuring_band"])
    assert compliance_scan()["suspicious"] == 1
    report = TransactionReport.objects.get(kind="suspicious")
    assert "risk_blocked" in report.grounds and "structuring_band" in report.grounds


def test_only_compliance_officers_review_and_file(merchant_alice, monkeypatch, reviewer_bob):
    submit(merchant_alice, 10_000, monkeypatch, outcome="block", reasons=["device_farm"])
    compliance_scan()
    report = TransactionReport.objects.get()
    with pytest.raises(DomainError) as exc:
        report_review(report_id=report.pk, officer=reviewer_bob)
    assert exc.value.code == "permission_denied"
    officer = reviewer("olivia", role="compliance_officer")
    with pytest.raises(DomainError) as exc:
        report_file(report_id=report.pk, officer=officer, note="")
    assert exc.value.code == "report_invalid_state"  # reviewed first
    report_review(report_id=report.pk, officer=officer, note="grounds checked")
    report_file(report_id=report.pk, officer=officer, note="reported")
    assert TransactionReport.objects.get().status == "filed"
    with pytest.raises(DomainError) as exc:
        report_dismiss(report_id=report.pk, officer=reviewer("oscar", role="compliance_officer"), reason="again")
    assert exc.value.code == "report_invalid_state"  # a decision is final


def test_custody_reconciliation_segregates_and_balances(merchant_alice, monkeypatch):
    submit(merchant_alice, 100_000, monkeypatch)  # paid: fee to platform, net in transit at the channel
    record = custody_reconcile()
    assert record.ok and record.ledger_difference == 0
    assert record.platform_funds > 0 and record.in_transit > 0
    assert record.merchant_funds == 10_000_000 - 100_000
    mismatch = custody_reconcile(bank_balance=record.custody_ledger - 1)
    assert not mismatch.ok and mismatch.bank_difference == -1
    assert CustodyReconciliation.objects.count() == 1  # one record per business day, updated


def test_compliance_daily_command(merchant_alice):
    call_command("compliance_daily")
    assert CustodyReconciliation.objects.get().ok
