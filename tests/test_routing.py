"""Routing: policies, eligibility with reasons, deterministic ties, daily quota counted once and released."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from channels.health import channel_outcome_record
from channels.models import Channel, ChannelBreaker, ChannelOutcome, ChannelQuotaUsage
from channels.routing import in_maintenance
from channels.services import channel_quota_release, channel_reserve, channel_route

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.get_current_timezone())


@pytest.fixture(autouse=True)
def _only_our_channels(db):
    Channel.objects.all().delete()  # the data migration's in-process sandbox would be the cheapest


def channel(code: str, **kw) -> Channel:
    values = {
        "name": code,
        "adapter": "sandbox",
        "supported_account_kinds": ["bank_card"],
        "expected_arrival_seconds": 60,
        "priority": 100,
        **kw,
    }
    return Channel.objects.create(code=code, **values)


@pytest.fixture
def three():
    return (
        channel("bank", adapter="bankdirect", fee_fixed=200, expected_arrival_seconds=120, priority=10),
        channel(
            "ali",
            adapter="alipay",
            fee_rate_bp=15,
            fee_min=100,
            expected_arrival_seconds=30,
            priority=20,
            max_amount=5_000_000,
        ),
        channel("slow", fee_fixed=50, expected_arrival_seconds=86_400, priority=30, speed_tiers=["t1"]),
    )


def route(amount=20_000, speed="standard", **kw):
    return channel_route(account_kind="bank_card", amount=amount, speed=speed, now=kw.pop("now", NOON), **kw)


def test_small_amounts_go_to_the_lowest_fee(three):
    d = route(20_000)
    assert (d.channel_code, d.explanation["policy"]) == ("ali", "lowest_fee")
    slow = next(c for c in d.explanation["candidates"] if c["channel"] == "slow")
    assert slow["why_not"] == ["speed tier standard not served"]
    assert route(20_000, speed="t1").channel_code == "slow"  # cheapest of all, for T+1


def test_large_amounts_go_bank_direct_even_when_dearer(three, settings):
    settings.ROUTING_LARGE_AMOUNT_FEN = 1_000_000
    d = route(2_000_000)  # Alipay would cost 2500 fen... bank-direct 200, but the policy decides anyway
    assert (d.channel_code, d.explanation["policy"]) == ("bank", "large_amount_bank_direct")
    Channel.objects.filter(code="ali").update(fee_rate_bp=0, fee_min=0)  # now Alipay is cheaper
    d = route(2_000_000)
    assert d.channel_code == "bank"
    ali = next(c for c in d.explanation["candidates"] if c["channel"] == "ali")
    assert ali["eligible"] and ali["why_not_preferred"]
    Channel.objects.filter(code="bank").update(paused=True)
    d = route(2_000_000)
    assert d.channel_code == "ali" and d.explanation["policy_fallback"]


def test_instant_goes_to_the_fastest(three):
    d = route(600_000, speed="instant")
    assert (d.channel_code, d.explanation["policy"]) == ("ali", "instant_fastest")
    assert "ali" in d.explanation["why"] or d.explanation["winner"] == "ali"


def test_ineligible_channels_say_why(three):
    Channel.objects.filter(code="ali").update(maintenance_windows=[{"start": "11:30", "end": "12:30"}])
    d = route(20_000)
    assert d.channel_code == "bank"
    ali = next(c for c in d.explanation["candidates"] if c["channel"] == "ali")
    assert ali["why_not"] == ["in a maintenance window"]
    assert route(20_000, exclude=("bank",)) is None
    assert route(20_000, now=NOON + timedelta(hours=1)).channel_code == "ali"


def test_maintenance_windows_may_cross_midnight():
    ch = Channel(maintenance_windows=[{"start": "23:30", "end": "00:30"}, {"bad": 1}])
    at = lambda h, m: datetime(2026, 3, 2, h, m, tzinfo=timezone.get_current_timezone())  # noqa: E731
    assert in_maintenance(ch, at(23, 45)) and in_maintenance(ch, at(0, 10))
    assert not in_maintenance(ch, at(0, 30)) and not in_maintenance(ch, at(12, 0))


def test_ties_are_deterministic_by_priority_then_code():
    channel("b-second", priority=20)
    channel("a-first", priority=20)
    channel("c-top", priority=10)
    winners = {route(10_000).channel_code for _ in range(5)}
    assert winners == {"c-top"}
    Channel.objects.filter(code="c-top").delete()
    assert route(10_000).channel_code == "a-first"
    d = route(10_000)
    assert "tie broken" in d.explanation["why"]


def test_live_success_rate_moves_traffic(three):
    Channel.objects.filter(code="ali").update(fee_rate_bp=0, fee_min=180)  # nearly as dear as bank-direct
    assert route(20_000).channel_code == "ali"
    for i in range(10):  # below the breaker's minimum sample, but a poor success rate
        channel_outcome_record(
            channel_code="ali",
            operation="submit",
            kind=ChannelOutcome.Kind.TIMEOUT if i < 8 else ChannelOutcome.Kind.SUCCESS,
            now=NOON,
        )
    d = route(20_000)  # at NOON too: the outcomes are inside the health window whatever the machine's speed
    assert d.channel_code == "bank"
    ali = next(c for c in d.explanation["candidates"] if c["channel"] == "ali")
    assert ali["success_rate"] == 0.2 and ali["components"]["reliability"] == 0.8


def test_daily_quota_is_counted_once_per_order_and_released_on_failure(three):
    Channel.objects.filter(code="ali").update(daily_count_limit=2, daily_amount_limit=50_000)
    # One business day, named explicitly: a run that crosses midnight must not find a fresh quota.
    assert channel_reserve(code="ali", order_no="A1", amount=20_000, now=NOON).admitted
    assert channel_reserve(code="ali", order_no="A1", amount=20_000, now=NOON).admitted  # same order: counted once
    usage = ChannelQuotaUsage.objects.get(channel__code="ali")
    assert (usage.count, usage.amount) == (1, 20_000)
    assert not channel_reserve(code="ali", order_no="A2", amount=40_000, now=NOON).admitted  # amount quota
    assert channel_reserve(code="ali", order_no="A3", amount=20_000, now=NOON).admitted
    assert not channel_reserve(code="ali", order_no="A4", amount=1, now=NOON).admitted  # count quota
    d = route(20_000)
    ali = next(c for c in d.explanation["candidates"] if c["channel"] == "ali")
    assert "daily count quota used up" in ali["why_not"] and d.channel_code == "bank"
    assert channel_quota_release(code="ali", order_no="A3")
    assert not channel_quota_release(code="ali", order_no="A3")  # once
    usage.refresh_from_db()
    assert (usage.count, usage.amount) == (1, 20_000)
    assert channel_reserve(code="ali", order_no="A4", amount=1, now=NOON).admitted


def test_an_open_breaker_refuses_admission_and_routing_skips_it(three, settings):
    settings.CHANNEL_BREAKER_MIN_SAMPLES = 5
    for _ in range(5):  # all at NOON, and asked at NOON: the cool-down cannot pass behind the test's back
        channel_outcome_record(channel_code="ali", operation="submit", kind=ChannelOutcome.Kind.TIMEOUT, now=NOON)
    assert ChannelBreaker.objects.get(channel__code="ali").state == ChannelBreaker.State.OPEN
    assert channel_reserve(code="ali", order_no="X", amount=100, now=NOON).reason == "breaker open"
    d = route(20_000)
    assert d.channel_code == "bank"
