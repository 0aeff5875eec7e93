"""Circuit breaking against the real gateway: one channel's failure rate goes above the budget, its breaker
opens, new payouts go to the next best channel within the window (payouts already there stay until it answers),
an alert is raised; once it recovers, half-open probes close the breaker again."""

from __future__ import annotations

import pytest
import time_machine
from django.utils import timezone

from channels.health import breaker_views
from channels.models import ChannelAlert, ChannelBreaker
from tests.factories import MerchantFactory
from withdrawals.attempts import routing_explanation
from withdrawals.models import Status, Withdrawal
from withdrawals.selectors import withdrawal_ledger_problems
from withdrawals.services import withdrawal_submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.gateway]


def breaker(code: str) -> ChannelBreaker:
    return ChannelBreaker.objects.get(channel__code=code)


COOLDOWN = 60  # seconds of the platform's clock, which only the test moves


def test_failing_channel_opens_its_breaker_payouts_fail_over_and_recovery_closes_it(platform, settings):
    """The platform's clock stands still (time-machine) while payouts run, so the breaker's cool-down cannot
    elapse behind the test's back however slow the machine is; the test moves the clock past it explicitly.
    (The gateway keeps real time: the skew stays well inside the signatures' 300 s window.)"""
    settings.CHANNEL_BREAKER_MIN_SAMPLES = 10
    settings.CHANNEL_BREAKER_COOLDOWN_SECONDS = COOLDOWN
    settings.CHANNEL_BREAKER_HALF_OPEN_PROBES = 2
    gw, broker = platform["gateway"], platform["broker"]
    # Bank cards: Alipay is cheapest for 200 yuan (fee 100 fen vs bank-direct's 200), so it is the first choice.
    gw.script("alipay", failure_rates={"SYSTEM_ERROR": 0.4}, seed=7)
    merchant = MerchantFactory(credit=50_000_000)
    account = merchant.payout_accounts.get(is_default=True)

    def pay(n: int, start: int) -> list[Withdrawal]:
        ids = []
        for i in range(n):
            w = withdrawal_submit(
                merchant_id=merchant.pk, payout_account_id=account.pk, amount=20_000, idempotency_key=f"fo-{start + i}"
            ).withdrawal
            ids.append(w.pk)
            broker.drain()
        return broker.settle(ids)

    with time_machine.travel(timezone.now(), tick=False) as clock:
        first = pay(12, 0)
        assert all(w.status == Status.PAID for w in first)
        assert breaker("alipay").state == ChannelBreaker.State.OPEN
        opened_after = next(i for i, w in enumerate(first) if w.channel_code == "bankdirect")
        # Everything submitted to Alipay before it opened stayed there (queried, resubmitted under the same
        # number) and was paid there; everything after went to bank-direct.
        assert {w.channel_code for w in first[:opened_after]} == {"alipay"}
        assert {w.channel_code for w in first[opened_after:]} == {"bankdirect"}
        routed = routing_explanation(first[-1])
        alipay = next(c for c in routed["candidates"] if c["channel"] == "alipay")
        assert not alipay["eligible"] and any("circuit breaker open" in r for r in alipay["why_not"])
        for w in first:  # one payout per order at the gateway, on the channel that paid it
            assert [p["channel"] for p in gw.payouts(order_no=w.order_no)] == [w.channel_code]
        alert = ChannelAlert.objects.get(kind=ChannelAlert.Kind.BREAKER_OPENED, channel_code="alipay")
        assert "熔断" in alert.title and alert.detail["calls"] >= 10

        # Alipay recovers; the cool-down passes, the breaker is half-open and lets probes through.
        gw.script("alipay", failure_rates={})
        clock.shift(COOLDOWN - 1)
        assert breaker_views(codes=["alipay"])["alipay"].state == ChannelBreaker.State.OPEN  # not a second early
        clock.shift(2)
        assert breaker_views(codes=["alipay"])["alipay"].state == ChannelBreaker.State.HALF_OPEN
        second = pay(4, 100)
        assert all(w.status == Status.PAID for w in second)
        assert [w.channel_code for w in second[:2]] == ["alipay", "alipay"]  # the probes
        assert breaker("alipay").state == ChannelBreaker.State.CLOSED
        assert {w.channel_code for w in second[2:]} == {"alipay"}  # cheapest again
        assert ChannelAlert.objects.filter(kind=ChannelAlert.Kind.BREAKER_CLOSED, channel_code="alipay").exists()
    assert withdrawal_ledger_problems() == []


def test_merchant_side_failures_never_open_a_breaker(platform, settings):
    settings.CHANNEL_BREAKER_MIN_SAMPLES = 4
    from tests.factories import card_for

    broker = platform["broker"]
    merchant = MerchantFactory(credit=50_000_000)
    bad = card_for(merchant, "11")  # invalid account: the merchant's problem, not the channel's
    ids = [
        withdrawal_submit(
            merchant_id=merchant.pk, payout_account_id=bad.pk, amount=20_000, idempotency_key=f"bad-{i}"
        ).withdrawal.pk
        for i in range(6)
    ]
    done = broker.settle(ids)
    assert {w.status for w in done} == {Status.FAILED}
    assert not ChannelBreaker.objects.exclude(state=ChannelBreaker.State.CLOSED).exists()
    assert not ChannelAlert.objects.filter(kind=ChannelAlert.Kind.BREAKER_OPENED).exists()
