"""T+1 withdrawals (issue 12): the quote names the day of the batch on the working-day calendar, nothing is sent
to a channel before the batch, the sweeper (a beat job) sends every payout of the batch when its time comes, and
waiting for the batch is not "stuck". Dates are 2026's published calendar: 国庆节 1-7 October, make-up working
days 20 September (Sunday) and 10 October (Saturday)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command

from tests.factories import MerchantFactory
from tests.test_money_guards import fresh, provider, queued, risk, run, submit  # noqa: F401  (fixtures)
from withdrawals import payouts
from withdrawals.fees import t1_batch_at
from withdrawals.models import Status
from withdrawals.services import withdrawal_quote

CST = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def calendar(transactional_db: object) -> None:
    """The calendar's data migration loaded it, but a transactional test starts from a flushed database."""
    call_command("workdays_load", verbosity=0)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CST)


@pytest.mark.parametrize(
    ("submitted", "batch", "words"),
    [
        ("2026-11-25 15:00", "2026-11-26 10:00", "11月26日（周四）10:00 批量出款"),  # an ordinary Wednesday
        ("2026-11-27 09:00", "2026-11-30 10:00", "11月30日（周一）10:00 批量出款"),  # Friday → Monday
        ("2026-11-28 12:00", "2026-11-30 10:00", "11月30日（周一）10:00 批量出款"),  # Saturday → Monday
        ("2026-09-30 15:00", "2026-10-08 10:00", "10月8日（周四）10:00 批量出款"),  # before 国庆节 → after it
        ("2026-10-09 16:00", "2026-10-10 10:00", "10月10日（周六）10:00 批量出款"),  # → a make-up working Saturday
        ("2026-09-19 11:00", "2026-09-20 10:00", "9月20日（周日）10:00 批量出款"),  # Saturday → make-up Sunday
        ("2026-10-01 08:00", "2026-10-08 10:00", "10月8日（周四）10:00 批量出款"),  # during the holiday
    ],
)
def test_the_quote_names_the_day_of_the_batch(submitted: str, batch: str, words: str) -> None:
    with time_machine.travel(at(submitted), tick=False):
        assert t1_batch_at(at(submitted)) == at(batch)
        quote = withdrawal_quote(amount=100_000, speed="t1")
        assert quote.arrival_text.startswith(words) and quote.arrival_text.endswith("当日到账")
        assert withdrawal_quote(amount=100_000, speed="standard").arrival_text == "2 小时内到账"


def test_a_t1_batch_waits_over_the_holiday_and_is_paid_together(provider, queued, monkeypatch, settings):  # noqa: F811
    settings.WITHDRAWAL_STUCK_AFTER_SECONDS = 900
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=2_000_000)
    with time_machine.travel(at("2026-09-30 15:00"), tick=False) as clock:
        first = submit(m, amount=100_000, speed="t1")
        clock.move_to(at("2026-09-30 18:30"))
        second = submit(m, amount=200_000, speed="t1")
        standard = submit(m, amount=50_000, speed="standard")
        for w in (first, second):
            w = fresh(w)
            assert (w.status, w.pay_not_before, w.next_action_at) == (
                Status.APPROVED,
                at("2026-10-08 10:00"),
                w.pay_not_before,
            )
            assert "T+1：等待 10-08 10:00 的批量出款" in [e.reason for e in w.events.all()]
        assert [wid for _, wid, _ in queued] == [standard.pk]  # only the standard one goes to the worker now
        run(queued.pop())
        assert fresh(standard).status == Status.PAID
        payouts.payout_run(withdrawal_id=first.pk)  # a stray early message does nothing
        assert fresh(first).status == Status.APPROVED and provider.calls == [("chan_a", "submit")]

        for moment in ("2026-10-01 10:00", "2026-10-05 12:00", "2026-10-08 09:59"):  # the holiday, then 1 min early
            clock.move_to(at(moment))
            counts = payouts.sweep()
            assert (counts["payout"], counts["stuck"]) == (0, 0), moment
        assert fresh(first).stuck_flagged_at is None

        clock.move_to(at("2026-10-08 10:00"))
        assert payouts.sweep()["payout"] == 2  # the whole batch, in one sweep
        assert sorted(wid for _, wid, _ in queued) == sorted([first.pk, second.pk])
        while queued:
            run(queued.pop(0))
    for w in (first, second):
        w = fresh(w)
        assert w.status == Status.PAID and w.paid_at == at("2026-10-08 10:00")
        assert provider.paid(w.order_no) == ["chan_a"]


def test_through_the_api_the_batch_day_is_counted_in_local_days(sandbox_channel, monkeypatch):
    """03:30 on Monday 30 November in Shanghai is still Sunday 29 November in UTC: the batch is Tuesday 1 December
    at 10:00 local, and the answer shows times in UTC. (The API once ran its business rules in UTC.)"""
    from django.test import Client

    from accounts.services import api_key_create
    from withdrawals.models import Withdrawal

    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=500_000)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=m)}")
    with time_machine.travel(at("2026-11-30 03:30"), tick=False):
        body = api.post(
            "/api/v1/withdrawals",
            data={"amount": 20_000, "payout_account": m.payout_accounts.get(is_default=True).pk, "speed": "t1"},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="t1-api",
        ).json()
        assert body["created_at"] == "2026-11-29T19:30:00Z"
        quote = api.post(
            "/api/v1/quotes", data={"amount": 20_000, "speed": "t1"}, content_type="application/json"
        ).json()
    w = Withdrawal.objects.get(pk=body["id"])
    assert (w.status, w.pay_not_before) == (Status.APPROVED, at("2026-12-01 10:00"))
    assert "12月1日（周二）10:00 批量出款" in str(quote)
