"""Automatic settlement (issue 12): rules on the working-day calendar (a holiday skips, a make-up working day
settles, a weekly day that is a holiday moves to the next working day of that week), a threshold rule, and a
rerun of the same period that settles nothing twice — even when its record was lost. 2026's calendar: 中秋节
25-27 September, 国庆节 1-7 October, make-up working days 20 September and 10 October."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client

from accounts.models import Merchant
from config.errors import DomainError
from risk.contract import RiskDecision
from tests.factories import MerchantFactory
from wallets.selectors import wallet_balances
from wallets.services import merchant_sale_settle
from withdrawals.models import SettlementRule, SettlementRun, Withdrawal
from withdrawals.settlement import RuleInput, settlement_rule_save, settlement_run_due

pytestmark = pytest.mark.django_db(transaction=True)
CST = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CST)


@pytest.fixture(autouse=True)
def setup(transactional_db: Any, sandbox_channel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    call_command("workdays_load", verbosity=0)  # a transactional test starts from a flushed database
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal", lambda **kw: RiskDecision(outcome="allow", score=1.0)
    )


def merchant(credit: int, **kw: Any) -> Merchant:
    return cast(Merchant, MerchantFactory(credit=credit, **kw))


def auto_withdrawals(m: Merchant) -> list[tuple[str, int]]:
    return [(w.idempotency_key, w.amount) for w in Withdrawal.objects.filter(merchant=m, source="auto").order_by("pk")]


def test_daily_rule_skips_holidays_settles_on_a_make_up_day_and_never_twice() -> None:
    m = merchant(500_000)
    rule = settlement_rule_save(merchant_id=m.pk, data=RuleInput(schedule="daily", run_at=time(10, 0), keep=10_000))
    key = f"auto-settle:{rule.pk}"
    with time_machine.travel(at("2026-09-20 09:59"), tick=False) as clock:  # a Sunday, but a make-up working day
        assert settlement_run_due() == {"submitted": 0, "skipped": 0}  # not before 10:00
        clock.move_to(at("2026-09-20 10:00"))
        assert settlement_run_due() == {"submitted": 1, "skipped": 0}
        assert auto_withdrawals(m) == [(f"{key}:2026-09-20", 490_000)]  # everything but the ¥100 kept
        clock.move_to(at("2026-09-20 16:00"))
        assert settlement_run_due() == {"submitted": 0, "skipped": 0}  # the same day again: nothing
        # The run's record lost (a crash right after the submit) while new money came in: the rerun asks for the
        # same period under the same idempotency key with another amount, and is refused — still one withdrawal.
        SettlementRun.objects.filter(rule=rule).delete()
        merchant_sale_settle(merchant_id=m.pk, order_ref="more", amount=300_000)
        assert settlement_run_due() == {"submitted": 0, "skipped": 1}
        assert SettlementRun.objects.get(rule=rule).outcome == "refused:idempotency_key_reused"
        assert auto_withdrawals(m) == [(f"{key}:2026-09-20", 490_000)]
        assert wallet_balances(merchant_id=m.pk).available == 310_000
        for day in ("2026-09-25", "2026-09-26", "2026-09-27"):  # 中秋节, then the weekend
            clock.move_to(at(f"{day} 10:30"))
            assert settlement_run_due() == {"submitted": 0, "skipped": 0}, day
        clock.move_to(at("2026-09-28 10:00"))  # Monday
        assert settlement_run_due() == {"submitted": 1, "skipped": 0}
    assert auto_withdrawals(m) == [(f"{key}:2026-09-20", 490_000), (f"{key}:2026-09-28", 300_000)]
    assert wallet_balances(merchant_id=m.pk).available == 10_000


def test_weekly_rule_on_a_holiday_moves_to_the_next_working_day_of_that_week() -> None:
    m = merchant(500_000)
    settlement_rule_save(merchant_id=m.pk, data=RuleInput(schedule="weekly", run_at=time(9, 30), weekday=0))
    with time_machine.travel(at("2026-10-05 12:00"), tick=False) as clock:  # Monday, 国庆节
        assert settlement_run_due()["submitted"] == 0
        clock.move_to(at("2026-10-08 09:30"))  # Thursday: the first working day of that week
        assert settlement_run_due()["submitted"] == 1
        clock.move_to(at("2026-10-09 09:30"))
        assert settlement_run_due()["submitted"] == 0  # once a week
        clock.move_to(at("2026-10-12 09:30"))  # next Monday
        assert settlement_run_due() == {"submitted": 0, "skipped": 1}  # nothing left to settle: recorded, skipped
    [first] = auto_withdrawals(m)
    assert first[0].endswith(":2026-W41") and first[1] == 500_000
    assert SettlementRun.objects.get(period="2026-W42").outcome == "nothing_to_settle"


def test_threshold_rule_settles_above_the_threshold_keeping_the_rest() -> None:
    m = merchant(50_000)
    settlement_rule_save(
        merchant_id=m.pk,
        data=RuleInput(schedule="threshold", run_at=time(0, 0), threshold=100_000, keep=20_000),
    )
    with time_machine.travel(at("2026-11-30 11:10"), tick=False) as clock:
        assert settlement_run_due() == {"submitted": 0, "skipped": 0}  # ¥500 is below the ¥1,000 threshold
        assert not SettlementRun.objects.exists()
        merchant_sale_settle(merchant_id=m.pk, order_ref="big", amount=450_000)  # now ¥5,000
        assert settlement_run_due()["submitted"] == 1
        assert auto_withdrawals(m)[0][1] == 480_000
        merchant_sale_settle(merchant_id=m.pk, order_ref="again", amount=200_000)
        assert settlement_run_due()["submitted"] == 0  # same hour
        clock.move_to(at("2026-11-30 12:00"))
        assert settlement_run_due()["submitted"] == 1
    assert [a for _, a in auto_withdrawals(m)] == [480_000, 200_000]


def test_bad_rules_are_refused_with_their_codes() -> None:
    m = merchant(10_000)
    with pytest.raises(DomainError) as exc:
        settlement_rule_save(merchant_id=m.pk, data=RuleInput(schedule="threshold", run_at=time(0, 0)))
    assert exc.value.code == "invalid_request" and "threshold" in exc.value.details
    with pytest.raises(DomainError) as exc:
        settlement_rule_save(merchant_id=m.pk, data=RuleInput(schedule="hourly", run_at=time(0, 0), keep=-1))
    assert exc.value.code == "invalid_request" and set(exc.value.details) == {"schedule", "keep"}
    nobody = merchant(10_000, real_name="李四", id_number="310101198001010018")
    nobody.payout_accounts.update(holder_name="王五")  # a card in another person's name cannot receive
    with pytest.raises(DomainError) as exc:
        settlement_rule_save(merchant_id=nobody.pk, data=RuleInput(schedule="daily", run_at=time(10, 0)))
    assert exc.value.code == "settlement_no_account"
    assert not SettlementRule.objects.exists()


def test_the_merchant_sets_pauses_and_resumes_its_rule_on_the_page() -> None:
    m = merchant(10_000, username="settler")
    client = Client()
    assert client.login(username="settler", password="pass-1234")
    assert "尚未开启自动结算" in client.get("/settlement/").content.decode()
    page = client.post(
        "/settlement/", {"schedule": "weekly", "run_at": "16:30", "weekday": "4", "keep": "100.50"}, follow=True
    ).content.decode()
    assert "自动结算规则已保存" in page
    assert "每周五 16:30（遇节假日顺延至当周下一个工作日），自动提现到默认收款账户（普通到账），保留 ¥100.50" in page
    rule = SettlementRule.objects.get(merchant=m)
    assert (rule.schedule, rule.run_at, rule.weekday, rule.keep, rule.enabled) == (
        "weekly",
        time(16, 30),
        4,
        10_050,
        True,
    )
    bad = client.post("/settlement/", {"schedule": "threshold", "run_at": "10:00", "threshold": "abc"}, follow=True)
    assert "请求参数有误" in bad.content.decode() or "请输入有效的金额" in bad.content.decode()
    assert SettlementRule.objects.get(merchant=m).schedule == "weekly"  # unchanged
    assert "自动结算已暂停" in client.post("/settlement/toggle/", {"enabled": "0"}, follow=True).content.decode()
    assert SettlementRule.objects.get(merchant=m).enabled is False
    with time_machine.travel(at("2026-12-04 16:30"), tick=False):  # a Friday: paused, nothing happens
        assert settlement_run_due() == {"submitted": 0, "skipped": 0}
    client.post("/settlement/toggle/", {"enabled": "1"})
    assert SettlementRule.objects.get(merchant=m).enabled is True
