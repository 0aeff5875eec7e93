"""Report rules (issue 13): a single withdrawal at or above 50,000.00 yuan (inclusive), a merchant's daily
aggregate, and structuring — just-under amounts across three days or across two linked merchants — raising
exactly one suspicious report with its evidence. The rules on values first, then through the daily scan."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from compliance.models import TransactionReport
from compliance.rules import (
    Transaction,
    daily_aggregate_findings,
    large_value_findings,
    structuring_band,
    structuring_findings,
)
from operations.compliance_jobs import compliance_scan
from risk.contract import RiskDecision
from tests.factories import MerchantFactory, reviewer
from withdrawals.models import Status, Withdrawal
from withdrawals.services import withdrawal_approve, withdrawal_submit

SH = ZoneInfo("Asia/Shanghai")
NOTHING = {"large_value": 0, "suspicious": 0, "daily_aggregate": 0, "structuring": 0}


def t(ref, amount, day=9, hour=10, merchant=1):
    return Transaction(ref=f"withdrawal:{ref}", merchant_id=merchant, merchant_name=f"m{merchant}", amount=amount,
                       occurred_at=datetime(2026, 3, day, hour, tzinfo=SH))  # fmt: skip


# --- the rules on values ------------------------------------------------------------------------------------
def test_single_withdrawal_threshold_is_inclusive(settings):
    assert settings.LARGE_VALUE_THRESHOLD_FEN == 5_000_000
    assert large_value_findings([t(1, 4_999_999)]) == []
    [finding] = large_value_findings([t(1, 4_999_999), t(2, 5_000_000)])
    assert (finding.kind, finding.subject_ref, finding.amount) == ("large_value", "withdrawal:2", 5_000_000)
    settings.LARGE_VALUE_THRESHOLD_FEN = 2_000_000  # configurable
    assert len(large_value_findings([t(1, 1_999_999), t(2, 2_000_000), t(3, 4_999_999)])) == 2


def test_daily_aggregate_per_merchant_and_day(settings):
    assert settings.DAILY_AGGREGATE_THRESHOLD_FEN == 5_000_000
    txns = [
        t(1, 3_000_000, merchant=1), t(2, 2_000_000, hour=23, merchant=1),  # 5,000,000 on the 9th: one report
        t(3, 3_000_000, merchant=2), t(4, 1_999_999, merchant=2),  # 4,999,999: none
        t(5, 4_000_000, day=10, merchant=3), t(6, 4_000_000, day=11, merchant=3),  # two days: none
    ]  # fmt: skip
    [finding] = daily_aggregate_findings(txns)
    assert (finding.kind, finding.subject_ref, finding.amount) == ("large_value", "daily:1:2026-03-09", 5_000_000)
    [ground] = finding.grounds
    assert (ground["rule"], ground["total"], ground["threshold"]) == ("daily_aggregate", 5_000_000, 5_000_000)
    assert [e["ref"] for e in ground["transactions"]] == ["withdrawal:1", "withdrawal:2"]
    settings.DAILY_AGGREGATE_THRESHOLD_FEN = 4_999_999
    assert [f.subject_ref for f in daily_aggregate_findings(txns)] == ["daily:1:2026-03-09", "daily:2:2026-03-09"]


def test_structuring_across_three_days_is_one_suspicious_report(settings):
    assert structuring_band() == (4_500_000, 5_000_000)
    two_days = [t(1, 4_900_000, day=9), t(2, 4_950_000, day=10)]
    assert structuring_findings(two_days) == []
    three_days = [*two_days, t(3, 4_999_999, day=11), t(4, 4_499_999, day=11), t(5, 5_000_000, day=11)]
    [finding] = structuring_findings(three_days)
    assert (finding.kind, finding.subject_ref, finding.amount) == ("suspicious", "structuring:withdrawal:1", 14_849_999)
    [ground] = finding.grounds
    assert ground["patterns"] == ["days"] and ground["days"] == ["2026-03-09", "2026-03-10", "2026-03-11"]
    assert [e["ref"] for e in ground["transactions"]] == ["withdrawal:1", "withdrawal:2", "withdrawal:3"]
    # Cited once: the same pattern is not reported again.
    assert structuring_findings(three_days, already_cited={"withdrawal:1", "withdrawal:2", "withdrawal:3"}) == []


def test_structuring_across_two_linked_merchants(settings):
    txns = [t(1, 4_800_000, merchant=1), t(2, 4_700_000, merchant=2), t(3, 4_600_000, merchant=3)]
    assert structuring_findings(txns) == []  # unlinked, one day each
    [finding] = structuring_findings(txns, links={2: [1]})  # 1 and 2 linked; 3 alone
    [ground] = finding.grounds
    assert ground["patterns"] == ["linked"] and finding.amount == 9_500_000
    assert [m["id"] for m in ground["merchants"]] == [1, 2]
    assert {e["ref"] for e in ground["transactions"]} == {"withdrawal:1", "withdrawal:2"}


# --- through the scan ---------------------------------------------------------------------------------------
def _allow(monkeypatch):
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda event: RiskDecision(outcome="allow", score=10, reasons=[]),
    )


def _submit(merchant, amount, **kw):
    account = merchant.payout_accounts.get(is_default=True)
    return withdrawal_submit(merchant_id=merchant.pk, payout_account_id=account.pk, amount=amount, **kw).withdrawal


@pytest.mark.django_db(transaction=True)
def test_scan_49_999_99_no_report_50_000_00_one(merchant_alice, monkeypatch):
    _allow(monkeypatch)
    below = _submit(merchant_alice, 4_999_999)
    at = _submit(merchant_alice, 5_000_000)
    for name in ("rita", "ron"):
        withdrawal_approve(withdrawal_id=at.pk, reviewer=reviewer(name))
    assert {w.status for w in Withdrawal.objects.filter(pk__in=[below.pk, at.pk])} == {Status.PAID}
    assert compliance_scan() == {**NOTHING, "large_value": 1}
    assert compliance_scan() == NOTHING
    report = TransactionReport.objects.get()
    assert (report.subject_ref, report.amount, report.channel) == (f"withdrawal:{at.pk}", 5_000_000, "sandbox")


@pytest.mark.django_db(transaction=True)
def test_scan_daily_aggregate_once_the_day_is_over(merchant_alice, monkeypatch):
    _allow(monkeypatch)
    with time_machine.travel(datetime(2026, 3, 9, 10, tzinfo=SH), tick=False) as clock:
        _submit(merchant_alice, 3_000_000)
        clock.shift(timedelta(hours=12))  # 22:00
        _submit(merchant_alice, 2_000_000)
        assert compliance_scan() == NOTHING  # the day is not over
        clock.shift(timedelta(hours=3))  # 01:00 on the 10th
        assert compliance_scan() == {**NOTHING, "daily_aggregate": 1}
        assert compliance_scan() == NOTHING
    report = TransactionReport.objects.get()
    assert (report.kind, report.subject_ref, report.amount) == (
        "large_value", f"daily:{merchant_alice.pk}:2026-03-09", 5_000_000
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_scan_structuring_across_three_days(sandbox_channel, monkeypatch):
    _allow(monkeypatch)
    m = MerchantFactory(name="Sam 点卡", real_name="王五", credit=20_000_000)
    with time_machine.travel(datetime(2026, 3, 9, 11, tzinfo=SH), tick=False) as clock:
        refs = []
        for _ in range(3):
            refs.append(f"withdrawal:{_submit(m, 4_900_000).pk}")
            assert compliance_scan()["structuring"] == (1 if len(refs) == 3 else 0)
            clock.shift(timedelta(days=1))
        assert compliance_scan() == NOTHING  # reported once
    report = TransactionReport.objects.get(kind="suspicious")
    [ground] = report.grounds
    assert report.subject_ref == f"structuring:{refs[0]}" and report.amount == 14_700_000
    assert ground["patterns"] == ["days"] and [e["ref"] for e in ground["transactions"]] == refs
    assert TransactionReport.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_scan_structuring_across_two_linked_merchants(sandbox_channel, monkeypatch):
    import withdrawals.services as services

    real = services.risk_assess_withdrawal  # the engine records devices and IPs: that is what links accounts
    monkeypatch.setattr(
        services,
        "risk_assess_withdrawal",
        lambda *, event: dataclasses.replace(real(event=event), outcome="allow", reasons=[]),
    )
    # a and b share a device and an IP; c shares nothing (its own phone too).
    a = MerchantFactory(name="甲 点卡", real_name="赵六", phone="13911110001", credit=10_000_000)
    b = MerchantFactory(name="乙 点卡", real_name="钱七", phone="13911110002", credit=10_000_000)
    c = MerchantFactory(name="丙 点卡", real_name="孙八", phone="13911110003", credit=10_000_000)
    wa = _submit(a, 4_800_000, ip="61.1.1.1", device="dev_shared_1")
    wb = _submit(b, 4_700_000, ip="61.1.1.1", device="dev_shared_1")
    _submit(c, 4_600_000, ip="62.2.2.2", device="dev_other")
    assert compliance_scan()["structuring"] == 1
    assert compliance_scan() == NOTHING
    report = TransactionReport.objects.get(kind="suspicious")
    [ground] = report.grounds
    assert ground["patterns"] == ["linked"] and report.amount == 9_500_000
    assert {e["ref"] for e in ground["transactions"]} == {f"withdrawal:{wa.pk}", f"withdrawal:{wb.pk}"}
    assert TransactionReport.objects.count() == 1
