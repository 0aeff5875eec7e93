"""Custody against the bank (issue 13): the custodian bank's closing balance, and its segregated sub-accounts
when the statement gives them, entered in the admin or imported from a statement CSV, against what the ledger
says custody holds; a planted difference is found exactly, by component."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from channels.models import ChannelAlert
from compliance.models import CustodyReconciliation
from compliance.services import (
    BankStatement,
    custody_bank_balance_enter,
    custody_bank_statement_import,
    custody_reconcile,
    yuan_to_fen,
)
from config.errors import DomainError
from config.money import fen_to_yuan
from risk.contract import RiskDecision
from tests.staff import staff_client, staff_user
from withdrawals.services import withdrawal_submit

pytestmark = pytest.mark.django_db(transaction=True)

DAY = date(2026, 3, 9)


@pytest.fixture
def day(merchant_alice, monkeypatch):
    """A paid withdrawal (fee to the platform, net in transit at the channel), then the day's reconciliation."""
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda event: RiskDecision(outcome="allow", score=10, reasons=[]),
    )
    account = merchant_alice.payout_accounts.get(is_default=True)
    withdrawal_submit(merchant_id=merchant_alice.pk, payout_account_id=account.pk, amount=100_000)
    record = custody_reconcile(business_date=DAY)
    assert record.ok and record.ledger_difference == 0 and record.bank_balance is None
    assert record.merchant_funds == 10_000_000 - 100_000
    assert record.platform_funds > 0 and record.in_transit > 0
    assert record.custody_ledger == record.merchant_funds + record.platform_funds + record.in_transit
    return record


def officer():
    from accounts.models import User

    return User.objects.filter(username="olivia").first() or staff_user("olivia", "compliance_officer")


def test_a_planted_difference_is_found_exactly_by_component(day):
    bank = BankStatement(
        balance=day.custody_ledger - 12_345,
        merchant_funds=day.merchant_funds - 12_345,  # the bank holds ¥123.45 less of merchants' money
        platform_funds=day.platform_funds,
        in_transit=day.in_transit,
    )
    record = custody_bank_balance_enter(business_date=DAY, bank=bank, by=officer())
    assert (record.bank_difference, record.merchant_difference) == (-12_345, -12_345)
    assert (record.platform_difference, record.in_transit_difference, record.ledger_difference) == (0, 0, 0)
    assert not record.ok and record.bank_source == "admin" and record.bank_entered_by.username == "olivia"
    alert = ChannelAlert.objects.get(kind="reconciliation")
    assert alert.severity == "critical" and alert.subject == "custody:2026-03-09"
    assert "银行 − 账面托管 ¥-123.45" in alert.title and "商户资金 ¥-123.45" in alert.title

    # The bank's figures stay when the day's job runs again; corrected, the day balances.
    again = custody_reconcile(business_date=DAY)
    assert (again.bank_balance, again.bank_difference) == (day.custody_ledger - 12_345, -12_345)
    fixed = custody_bank_balance_enter(business_date=DAY, bank=BankStatement(balance=day.custody_ledger), by=officer())
    assert fixed.ok and fixed.bank_difference == 0 and fixed.merchant_difference is None


def test_only_compliance_enters_the_bank_balance(day, reviewer_bob):
    with pytest.raises(DomainError) as exc:
        custody_bank_balance_enter(business_date=DAY, bank=BankStatement(balance=1), by=reviewer_bob)
    assert exc.value.code == "permission_denied"


def test_statement_csv_import(day):
    y = fen_to_yuan
    text = (
        "business_date,balance,merchant_funds,platform_funds,in_transit\r\n"
        f"2026-03-09,{y(day.custody_ledger + 1, grouping=False)},{y(day.merchant_funds, grouping=False)},"
        f"{y(day.platform_funds + 1, grouping=False)},{y(day.in_transit, grouping=False)}\r\n"
    )
    [record] = custody_bank_statement_import(text=text, by=officer(), source="csv:bank-0309.csv")
    assert (record.bank_difference, record.platform_difference, record.merchant_difference) == (1, 1, 0)
    assert record.bank_source == "csv:bank-0309.csv" and not record.ok

    bad = "business_date,balance\n2026-03-09,100.00\n2026-03-10,12.345\n"
    with pytest.raises(DomainError) as exc:
        custody_bank_statement_import(text=bad, by=officer())
    assert exc.value.code == "invalid_request" and exc.value.details["line"] == 3
    assert CustodyReconciliation.objects.get(business_date=DAY).bank_difference == 1  # nothing entered
    with pytest.raises(DomainError) as exc:
        custody_bank_statement_import(text="date,amount\n2026-03-09,1\n", by=officer())
    assert exc.value.code == "invalid_request"


def test_yuan_to_fen_is_exact():
    assert [yuan_to_fen(t) for t in ("0.01", "1,234.56", "¥50000", " 7.1 ")] == [1, 123_456, 5_000_000, 710]
    for bad in ("1.001", "abc", "", "NaN"):
        with pytest.raises(ValueError, match="yuan"):
            yuan_to_fen(bad)


def test_bank_page_in_the_admin(day):
    client = staff_client(officer())
    url = "/admin/compliance/custodyreconciliation/bank/"
    assert "录入托管银行日终余额" in client.get(url).content.decode()
    assert "录入银行余额" in client.get("/admin/compliance/custodyreconciliation/").content.decode()
    balance = fen_to_yuan(day.custody_ledger - 500, grouping=False)
    client.post(url, {"business_date": "2026-03-09", "balance": balance, "in_transit": ""})
    assert CustodyReconciliation.objects.get(business_date=DAY).bank_difference == -500
    upload = SimpleUploadedFile(
        "s.csv", f"business_date,balance\n2026-03-09,{fen_to_yuan(day.custody_ledger, grouping=False)}\n".encode()
    )
    client.post(url, {"statement": upload})
    record = CustodyReconciliation.objects.get(business_date=DAY)
    assert record.ok and record.bank_source == "csv:s.csv"
    support = staff_client(staff_user("pat", "support"))
    assert support.post(url, {"business_date": "2026-03-09", "balance": "1"}).status_code == 403
