"""Chaos: timeouts (answers withheld), dropped requests, lost / duplicated / late callbacks on two channels
over 30 withdrawals. Every withdrawal settles to exactly one final state, the gateway's own book holds exactly
one payout per paid withdrawal (never a second one under a new number), and the ledger balances."""

from __future__ import annotations

import pytest

from channels.models import Channel
from tests.factories import MerchantFactory, card_for
from wallets.selectors import ledger_problems, wallet_balances
from withdrawals.models import FINAL_STATES, Status
from withdrawals.selectors import withdrawal_ledger_problems
from withdrawals.services import withdrawal_submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.gateway, pytest.mark.slow]

N = 30
FAULTS = {
    "timeout_rate": 0.25,
    "drop_rate": 0.1,
    "callback_lost_rate": 0.5,
    "callback_duplicate_rate": 0.3,
    "callback_late_rate": 0.2,
    "callback_late_seconds": 1.0,
}


def test_every_withdrawal_settles_once_with_one_payout_per_paid_withdrawal(platform, settings):
    # Breakers are tested elsewhere; here the channels must keep taking payouts despite 25 % timeouts.
    settings.CHANNEL_BREAKER_FAILURE_RATE_BP = 9000
    gw, broker = platform["gateway"], platform["broker"]
    Channel.objects.filter(code="wechat").update(enabled=False)
    for seed, code in enumerate(("bankdirect", "alipay"), start=11):
        gw.script(code, seed=seed, **FAULTS)
    merchant = MerchantFactory(credit=100_000_000)
    default = merchant.payout_accounts.get(is_default=True)
    # Mostly ordinary cards, plus the deterministic paths: answer lost then paid, first request lost, invalid.
    special = {
        5: card_for(merchant, "33"),
        10: card_for(merchant, "66"),
        15: card_for(merchant, "11"),
        20: card_for(merchant, "55"),
    }
    ids = []
    for i in range(N):
        account = special.get(i, default)
        amount = 20_000 + i * 100 if i % 3 else 600_000  # some go bank-direct on fee, most to Alipay
        ids.append(
            withdrawal_submit(
                merchant_id=merchant.pk, payout_account_id=account.pk, amount=amount, idempotency_key=f"chaos-{i}"
            ).withdrawal.pk
        )
        broker.drain()
    done = broker.settle(ids, timeout=60)

    assert all(w.status in FINAL_STATES for w in done), [(w.pk, w.status) for w in done if w.status not in FINAL_STATES]
    paid = [w for w in done if w.status == Status.PAID]
    failed = [w for w in done if w.status == Status.FAILED]
    assert len(paid) + len(failed) == N
    assert [w.failure_code for w in failed] == ["invalid_account"]
    for w in done:  # exactly one final transition each
        finals = list(
            w.events.filter(to_status__in=FINAL_STATES)
            .exclude(from_status__in=FINAL_STATES)
            .values_list("to_status", flat=True)
        )
        assert finals == [w.status], (w.pk, finals)
    book = gw.payouts()
    by_order: dict[str, list[dict]] = {}
    for p in book:
        by_order.setdefault(p["order_no"], []).append(p)
    for w in paid:
        [payout] = by_order[w.order_no]  # one payout, at one channel, for each paid withdrawal
        assert (payout["channel"], payout["status"], payout["amount"]) == (w.channel_code, "succeeded", w.net_amount)
    assert sum(p["status"] == "succeeded" for p in book) == len(paid)
    assert {w.channel_code for w in paid} == {"bankdirect", "alipay"}
    # The faults really happened: some answers were lost (unknown outcomes) and some resubmits were needed.
    assert sum(1 for w in done if w.events.filter(to_status=Status.OUTCOME_UNKNOWN).exists()) >= 3
    lost = [c for c in gw.control("GET", "/callbacks?channel=&order_no=")["callbacks"] if c["status"] == "lost"]
    assert lost
    balances = wallet_balances(merchant_id=merchant.pk)
    assert balances.held == 0
    assert balances.available == 100_000_000 - sum(w.amount for w in paid)
    assert ledger_problems() == []
    assert withdrawal_ledger_problems() == []
