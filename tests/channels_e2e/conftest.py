"""End-to-end fixtures: the REAL sandbox gateway process, our Django app on a live server (the gateway's
callbacks arrive at /callbacks/<code>/ there), and a stand-in broker that lets a test run the worker's tasks
when it wants (Celery eager mode would run polling chains recursively, ignoring their countdowns)."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction

from channels.gateway.testing import GatewayClient, running_gateway
from channels.models import Channel
from risk.contract import RiskDecision
from withdrawals import payouts
from withdrawals.fees import policy_current
from withdrawals.models import FINAL_STATES, Status, Withdrawal

# A withheld answer: the gateway holds the line HANG_SECONDS, then hangs up without a word, which the adapter
# sees as a broken connection (unknown outcome). The adapter timeout is far longer, so that a merely slow answer
# on a busy machine is never mistaken for a lost one (a lost one ends at HANG_SECONDS whatever the timeout).
ADAPTER_TIMEOUT = 10.0
HANG_SECONDS = 1.0
# Bounded polling of the gateway and the live server, generous for a busy machine; a healthy run needs far less.
SETTLE_SECONDS = 60.0

# code, adapter, kinds, fee fixed, rate bp, fee min, arrival s, max amount
CHANNELS = {
    "bankdirect": ("bankdirect", ["bank_card"], 200, 0, 0, 120, 100_000_000),
    "alipay": ("alipay", ["alipay", "bank_card"], 0, 15, 100, 30, 5_000_000),
    "wechat": ("wechat", ["wechat"], 0, 10, 50, 10, 2_000_000),
}


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayClient]:
    with running_gateway(tmp_path_factory.mktemp("e2e-gateway")) as client:
        yield client


class Broker:
    """Collects the tasks the services enqueue (after commit, as in production) and runs them on demand."""

    def __init__(self) -> None:
        self.queue: collections.deque[tuple[str, int, int | None]] = collections.deque()

    def enqueue_payout(self, withdrawal_id: int, *, seq: int | None = None, countdown: int = 0) -> None:
        transaction.on_commit(lambda: self.queue.append(("payout", withdrawal_id, seq)))

    def enqueue_query(self, withdrawal_id: int, *, seq: int | None = None, countdown: int = 0) -> None:
        transaction.on_commit(lambda: self.queue.append(("query", withdrawal_id, seq)))

    def drain(self, max_tasks: int = 500) -> int:
        ran = 0
        while self.queue and ran < max_tasks:
            kind, wid, seq = self.queue.popleft()
            if kind == "payout":
                payouts.payout_run(withdrawal_id=wid, seq=seq)
            else:
                payouts.payout_query_run(withdrawal_id=wid, seq=seq)
            ran += 1
        return ran

    def settle(self, ids: list[int], timeout: float = SETTLE_SECONDS) -> list[Withdrawal]:
        """Run the worker until every withdrawal is final: drain, then do what the sweeper does for the rest
        (re-enqueue approved ones, query in-flight ones), until done or ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            pending = list(Withdrawal.objects.filter(pk__in=ids).exclude(status__in=FINAL_STATES))
            if not pending or time.monotonic() > deadline:
                return list(Withdrawal.objects.filter(pk__in=ids).order_by("pk"))
            for w in pending:
                self.queue.append(("payout" if w.status == Status.APPROVED else "query", w.pk, w.action_seq))
            time.sleep(0.1)


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    b = Broker()
    monkeypatch.setattr("withdrawals.dispatch.enqueue_payout", b.enqueue_payout)
    monkeypatch.setattr("withdrawals.dispatch.enqueue_query", b.enqueue_query)
    return b


@pytest.fixture
def allow_all_risk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Risk is not under test here: every withdrawal is approved at once."""
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal", lambda **kw: RiskDecision(outcome="allow", score=1.0)
    )


@pytest.fixture
def roomy_policy(transactional_db: Any) -> None:
    policy = policy_current()
    policy.daily_count_limit = 1000
    policy.daily_amount_limit = 10**11
    policy.save()


def make_channel(gateway: GatewayClient, server_url: str, code: str, **overrides: Any) -> Channel:
    adapter, kinds, fixed, rate, fmin, arrival, max_amount = CHANNELS[code]
    config = dict(gateway.keys["adapters"][adapter])
    config.update(notify_url=f"{server_url}/callbacks/{code}/", timeout=ADAPTER_TIMEOUT)
    values = {
        "name": f"{code} (gateway)",
        "adapter": adapter,
        "supported_account_kinds": kinds,
        "fee_fixed": fixed,
        "fee_rate_bp": rate,
        "fee_min": fmin,
        "expected_arrival_seconds": arrival,
        "max_amount": max_amount,
        "priority": {"bankdirect": 10, "alipay": 20, "wechat": 30}[code],
        "config": config,
        **overrides,
    }
    channel, _ = Channel.objects.update_or_create(code=code, defaults=values)
    return channel


@pytest.fixture
def platform(
    gateway: GatewayClient, live_server: Any, broker: Broker, allow_all_risk: None, roomy_policy: None, settings: Any
) -> dict[str, Any]:
    """A clean gateway, our three gateway channels pointing their callbacks at the live server, no other
    channel, and quick hangs."""
    settings.PLATFORM_BASE_URL = live_server.url
    gateway.control("POST", "/reset")
    for code in CHANNELS:
        gateway.script(code, hang_seconds=HANG_SECONDS)
    Channel.objects.exclude(code__in=list(CHANNELS)).delete()
    channels = {code: make_channel(gateway, live_server.url, code) for code in CHANNELS}
    return {"gateway": gateway, "url": live_server.url, "broker": broker, "channels": channels}


def wait_for(predicate: Any, timeout: float = SETTLE_SECONDS, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
