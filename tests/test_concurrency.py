"""Races with real threads, real transactions and real row locks on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.db import connection, connections

from config.errors import DomainError
from tests.factories import MerchantFactory
from wallets.selectors import wallet_balances
from withdrawals.fees import fee_for, policy_current
from withdrawals.models import Status, Withdrawal
from withdrawals.services import withdrawal_submit

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are only real on PostgreSQL")


def run_in_threads(n: int, fn):
    barrier = threading.Barrier(n)

    def worker(i: int):
        barrier.wait()
        try:
            return fn(i)
        except DomainError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(worker, range(n)))


def test_fifty_withdrawals_against_a_wallet_that_funds_twenty(sandbox_channel, monkeypatch):
    from risk.contract import RiskDecision

    # Money invariants, not risk: fifty withdrawals in a second would rightly trip the velocity rules.
    monkeypatch.setattr("withdrawals.services.risk_assess_withdrawal", lambda event: RiskDecision("allow", 0))
    amount = 10_000
    merchant = MerchantFactory(credit=20 * amount)
    policy = policy_current()
    policy.daily_count_limit = 100
    policy.save()
    account = merchant.payout_accounts.get(is_default=True)

    results = run_in_threads(
        50,
        lambda i: (
            withdrawal_submit(
                merchant_id=merchant.pk,
                payout_account_id=account.pk,
                amount=amount,
                idempotency_key=f"race-{i}",
            ).withdrawal.pk
        ),
    )
    outcome = Counter("accepted" if isinstance(r, int) else r for r in results)
    assert outcome == {"accepted": 20, "insufficient_funds": 30}
    assert Withdrawal.objects.filter(merchant=merchant).count() == 20
    b = wallet_balances(merchant_id=merchant.pk)
    assert (b.available, b.held) == (0, 0)
    assert set(Withdrawal.objects.values_list("status", flat=True)) == {Status.PAID}
    fee = fee_for(policy=policy, speed="standard", amount=amount)
    assert sum(Withdrawal.objects.values_list("net_amount", flat=True)) == 20 * (amount - fee)
    call_command("ledger_check")


def test_the_same_idempotency_key_concurrently_makes_one_withdrawal(sandbox_channel):
    merchant = MerchantFactory(credit=1_000_000)
    account = merchant.payout_accounts.get(is_default=True)
    results = run_in_threads(
        12,
        lambda i: (
            withdrawal_submit(
                merchant_id=merchant.pk,
                payout_account_id=account.pk,
                amount=10_000,
                idempotency_key="same-key",
            ).withdrawal.pk
        ),
    )
    assert len(set(results)) == 1 and isinstance(results[0], int)
    assert Withdrawal.objects.filter(merchant=merchant).count() == 1
    assert wallet_balances(merchant_id=merchant.pk).available == 1_000_000 - 10_000
    call_command("ledger_check")


def test_concurrent_review_decisions_apply_once(sandbox_channel, reviewer_bob, reviewer_carol, monkeypatch):
    from risk.contract import RiskDecision
    from withdrawals.services import withdrawal_approve, withdrawal_reject

    monkeypatch.setattr("withdrawals.services.risk_assess_withdrawal", lambda event: RiskDecision("review", 50))

    merchant = MerchantFactory(credit=5_000_000)
    account = merchant.payout_accounts.get(is_default=True)
    w = withdrawal_submit(merchant_id=merchant.pk, payout_account_id=account.pk, amount=2_500_000).withdrawal
    assert Withdrawal.objects.get(pk=w.pk).status == Status.PENDING_REVIEW

    def act(i: int):
        if i % 2:
            return withdrawal_approve(withdrawal_id=w.pk, reviewer=reviewer_bob).status
        return withdrawal_reject(withdrawal_id=w.pk, reviewer=reviewer_carol, reason="race").status

    results = run_in_threads(6, act)
    final = Withdrawal.objects.get(pk=w.pk)
    assert final.status in (Status.PAID, Status.REJECTED)
    assert sum(1 for r in results if r in (Status.APPROVED, Status.REJECTED, Status.PAID)) == 1
    call_command("ledger_check")
