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


def test_the_cutoff_is_five_calendar_years():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from compliance.retention import retention_cutoff

    sh = ZoneInfo("Asia/Shanghai")
    assert retention_cutoff(datetime(2031, 3, 9, 10, tzinfo=sh)) == datetime(2026, 3, 9, 10, tzinfo=sh)
    assert retention_cutoff(datetime(2032, 2, 29, 10, tzinfo=sh)) == datetime(2027, 2, 28, 10, tzinfo=sh)


def test_the_expiry_job_archives_only_what_is_past_retention(tmp_path):
    import json
    from datetime import datetime
    from pathlib import Path
    from zoneinfo import ZoneInfo

    import time_machine

    from compliance.models import RetentionArchive
    from compliance.retention import records_archive

    sh = ZoneInfo("Asia/Shanghai")

    def draft(ref, at):
        with time_machine.travel(at, tick=False):
            return report_draft(kind="suspicious", subject_ref=ref, merchant_id=1, merchant_name="m", amount=100,
                                occurred_at=at, grounds=["risk_blocked"])  # fmt: skip

    old = draft("withdrawal:1", datetime(2026, 3, 8, 12, tzinfo=sh))
    young = draft("withdrawal:2", datetime(2026, 3, 10, 12, tzinfo=sh))
    [run] = records_archive(out_dir=tmp_path, now=datetime(2031, 3, 9, 10, tzinfo=sh))
    assert (run.table, run.rows, run.first_id, run.last_id) == ("compliance_transactionreport", 1, old.pk, old.pk)
    [line] = Path(run.path).read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["subject_ref"] == "withdrawal:1"
    assert records_archive(out_dir=tmp_path, now=datetime(2031, 3, 9, 11, tzinfo=sh)) == []  # once each
    [later] = records_archive(out_dir=tmp_path, now=datetime(2031, 3, 11, 0, tzinfo=sh))
    assert (later.rows, later.first_id) == (1, young.pk)
    assert TransactionReport.objects.count() == 2 and RetentionArchive.objects.count() == 2  # nothing deleted
