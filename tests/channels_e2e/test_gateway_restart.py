"""The platform through a gateway crash: the REAL gateway process kills itself (SIGKILL, as ``kill -9``) inside
the decision that pays the first withdrawal, a second payout is sent while it is down, and it is restarted on
the same port and book. The platform's own recovery (no answer → unknown → query → "not found" → resubmit under
the SAME order number) pays every withdrawal exactly once, and the gateway calls back every payout it made."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channels.gateway.testing import GatewayClient, GatewayProcess
from channels.models import CallbackReceipt, Channel
from tests.factories import MerchantFactory
from wallets.selectors import ledger_problems, wallet_balances
from withdrawals.models import Status, Withdrawal
from withdrawals.selectors import withdrawal_ledger_problems
from withdrawals.services import withdrawal_submit

from .conftest import HANG_SECONDS, Broker, make_channel, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.gateway, pytest.mark.slow]
CREDIT = 5_000_000
SETTLE_WITHIN = 120.0  # seconds, bounded polling of real processes on a possibly busy machine


@pytest.fixture
def own_gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway of this test's own (the session one must not be killed), on a fixed port it keeps across
    restarts, so the channel config stays valid."""
    process = GatewayProcess(tmp_path / "gateway")
    process.start().script("bankdirect", hang_seconds=HANG_SECONDS)
    yield process
    process.stop()


@pytest.mark.parametrize("point", ["payout_written", "callbacks_written", "committed"])
def test_a_gateway_killed_while_paying_restarts_and_every_withdrawal_is_paid_once(
    point: str,
    own_gateway: GatewayProcess,
    live_server: Any,
    broker: Broker,
    allow_all_risk: None,
    roomy_policy: None,
    settings: Any,
) -> None:
    settings.PLATFORM_BASE_URL = live_server.url
    settings.CHANNEL_BREAKER_FAILURE_RATE_BP = 10_000  # breakers are tested elsewhere: keep the one channel open
    gw = GatewayClient(own_gateway.base_url, own_gateway.data_dir)
    Channel.objects.exclude(code="bankdirect").delete()
    make_channel(gw, live_server.url, "bankdirect")
    merchant: Any = MerchantFactory(credit=CREDIT)
    account = merchant.payout_accounts.get(is_default=True)
    ids = [
        withdrawal_submit(
            merchant_id=merchant.pk, payout_account_id=account.pk, amount=20_000 + i, idempotency_key=f"crash-{i}"
        ).withdrawal.pk
        for i in range(3)
    ]
    first = Withdrawal.objects.get(pk=ids[0])
    gw.control("POST", "/crash", {"point": point, "order_no": first.order_no})

    assert broker.drain(max_tasks=1) == 1  # the first payout: the gateway dies inside its decision
    assert own_gateway.wait_dead() == -signal.SIGKILL
    assert broker.drain(max_tasks=1) == 1  # the second payout finds nobody listening
    first_w, second_w = (Withdrawal.objects.get(pk=pk) for pk in ids[:2])
    assert first_w.status == Status.OUTCOME_UNKNOWN  # sent, no answer: not a failure, the hold stays
    # Connection refused: nothing was sent, a definite (retryable) refusal; it stays with its channel, held.
    assert (second_w.status, second_w.channel_sends, second_w.channel_refusals) == (Status.PROCESSING, 1, 1)

    gw = own_gateway.start()
    done = broker.settle(ids, timeout=SETTLE_WITHIN)

    assert [w.status for w in done] == [Status.PAID] * 3, [(w.pk, w.status) for w in done]
    for w in done:
        [payout] = gw.payouts("bankdirect", w.order_no)  # exactly one payout per order number
        assert (payout["status"], payout["amount"], payout["reference"]) == (
            "succeeded",
            w.net_amount,
            w.channel_reference,
        )
        assert gw.wait_callbacks("bankdirect", w.order_no, timeout=SETTLE_WITHIN), w.order_no  # delivered
        receipts = CallbackReceipt.objects.filter(order_no=w.order_no)
        assert wait_for(receipts.exists, timeout=SETTLE_WITHIN)
        paid_moves = list(w.events.filter(to_status=Status.PAID).values_list("from_status", flat=True))
        assert len(paid_moves) == 1 and Status.PAID not in paid_moves  # paid once, by whichever answer came first
    balances = wallet_balances(merchant_id=merchant.pk)
    assert (balances.held, balances.available) == (0, CREDIT - sum(w.amount for w in done))
    assert ledger_problems() == []
    assert withdrawal_ledger_problems() == []
