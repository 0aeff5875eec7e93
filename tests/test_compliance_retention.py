"""Records cannot be deleted (issue 13): the database itself refuses DELETE of reports, custody statements,
KYC records, review approvals, withdrawals and transfers (compliance migration 0004), and the audit trail,
ledger entries and withdrawal events are append-only. A raw SQL DELETE, past every Python check, raises."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.models import AuditEvent, KycRecord
from accounts.services import pii_reveal
from compliance.models import CustodyReconciliation, TransactionReport
from compliance.services import custody_reconcile, report_draft
from risk.contract import RiskDecision
from tests.staff import staff_user
from wallets.models import Entry, Transfer
from withdrawals.models import Withdrawal, WithdrawalApproval, WithdrawalEvent
from withdrawals.services import withdrawal_submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def records(merchant_alice, reviewer_bob, monkeypatch):
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda event: RiskDecision(outcome="allow", score=10, reasons=[]),
    )
    account = merchant_alice.payout_accounts.get(is_default=True)
    w = withdrawal_submit(merchant_id=merchant_alice.pk, payout_account_id=account.pk, amount=30_000).withdrawal
    report = report_draft(kind="suspicious", subject_ref=f"withdrawal:{w.pk}", merchant_id=merchant_alice.pk,
                          merchant_name=merchant_alice.name, amount=w.amount, occurred_at=w.created_at,
                          grounds=["risk_blocked"])  # fmt: skip
    pii_reveal(target=merchant_alice.kyc, by=staff_user("root", None), reason="retention test")
    return {
        TransactionReport: report.pk,
        CustodyReconciliation: custody_reconcile().pk,
        KycRecord: merchant_alice.kyc.pk,
        WithdrawalApproval: WithdrawalApproval.objects.create(withdrawal=w, reviewer=reviewer_bob).pk,
        Withdrawal: w.pk,
        Transfer: Transfer.objects.order_by("pk").first().pk,
        Entry: Entry.objects.order_by("pk").first().pk,
        WithdrawalEvent: WithdrawalEvent.objects.filter(withdrawal=w).first().pk,
        AuditEvent: AuditEvent.objects.order_by("pk").first().pk,
    }


@pytest.mark.parametrize(
    "model",
    [TransactionReport, CustodyReconciliation, KycRecord, WithdrawalApproval, Withdrawal, Transfer, Entry,
     WithdrawalEvent, AuditEvent],
    ids=lambda m: m._meta.db_table,
)  # fmt: skip
def test_a_raw_delete_is_refused_by_the_database(records, model):
    table = model._meta.db_table
    with pytest.raises(IntegrityError, match="refused"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [records[model]])
    assert model.objects.filter(pk=records[model]).exists()


def test_the_orm_cannot_delete_a_report_either(records):
    with pytest.raises(IntegrityError, match="compliance_transactionreport rows are kept"), transaction.atomic():
        TransactionReport.objects.filter(pk=records[TransactionReport]).delete()
    assert TransactionReport.objects.count() == 1


def test_records_still_move_through_their_states(records):
    # Kept is not frozen: a report is reviewed (UPDATE), a KYC record can be re-verified.
    updated = TransactionReport.objects.filter(pk=records[TransactionReport]).update(narrative="edited")
    assert updated == 1


def test_retention_is_five_years_by_default(settings):
    assert settings.RECORD_RETENTION_YEARS == 5
