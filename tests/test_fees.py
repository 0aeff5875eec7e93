"""Fees pinned by value, per speed, under the default WithdrawalPolicy.

fee = fixed + ceil(amount × rate_bp / 10000), then clamped to [min, max]; the fee is deducted from the amount.
Every expected number below is worked out by hand in its comment, never computed with the code under test.
"""

from __future__ import annotations

import pytest
import time_machine

from config.errors import DomainError
from tests.factories import ALICE_CREDIT
from wallets.models import LedgerAccount, Transfer
from wallets.selectors import ledger_problems, wallet_balances
from withdrawals import payouts
from withdrawals.fees import fee_for, policy_current
from withdrawals.models import Status, Withdrawal, WithdrawalPolicy
from withdrawals.selectors import withdrawal_ledger_problems
from withdrawals.services import withdrawal_quote, withdrawal_submit

# The default policy's fee terms, in fen and basis points, as the tables below assume them.
DEFAULT_TERMS = {
    "standard": {"fixed": 100, "rate_bp": 10, "min": 100, "max": 2500},
    "instant": {"fixed": 200, "rate_bp": 30, "min": 200, "max": 5000},
    "t1": {"fixed": 0, "rate_bp": 5, "min": 50, "max": 1500},
}


def test_the_default_policy_has_the_fee_terms_these_tables_assume():
    policy = WithdrawalPolicy()
    for speed, terms in DEFAULT_TERMS.items():
        assert {
            "fixed": getattr(policy, f"{speed}_fee_fixed"),
            "rate_bp": getattr(policy, f"{speed}_fee_rate_bp"),
            "min": getattr(policy, f"{speed}_fee_min"),
            "max": getattr(policy, f"{speed}_fee_max"),
        } == terms, speed


# Standard: 100 fen + 0.10 % (10 bp), at least 100, at most 2,500. Because fixed (100) == min (100) and the
# rate is positive, the min clamp cannot bind under the default policy: the smallest fee is fixed + 1.
STANDARD = [
    (100_000, 200),  # fixed + %: 100 + 100_000×10/10000 = 100 + 100 = 200
    (1_000, 101),  # smallest allowed amount: 100 + 1_000×10/10000 = 100 + 1 = 101 (min 100 does not bind)
    (10_000, 110),  # 100 + 100_000/10000 = 100 + 10 = 110
    (10_001, 111),  # rounding: 100 + ceil(100_010/10000 = 10.001) = 100 + 11 = 111
    (9_999, 110),  # rounding: 100 + ceil(99_990/10000 = 9.999) = 100 + 10 = 110
    (2_400_000, 2500),  # exactly max: 100 + 24_000_000/10000 = 100 + 2_400 = 2_500
    (2_400_001, 2500),  # max clamp: 100 + ceil(2_400.001) = 2_501 → 2_500
    (10_000_000, 2500),  # max clamp: 100 + 10_000 = 10_100 → 2_500
]

# Instant: 200 fen + 0.30 % (30 bp), at least 200, at most 5,000. As for standard, fixed (200) == min (200),
# so the min clamp cannot bind under the default policy.
INSTANT = [
    (100_000, 500),  # fixed + %: 200 + 100_000×30/10000 = 200 + 300 = 500
    (1_000, 203),  # smallest allowed amount: 200 + 30_000/10000 = 200 + 3 = 203 (min 200 does not bind)
    (10_000, 230),  # 200 + 300_000/10000 = 200 + 30 = 230
    (10_001, 231),  # rounding: 200 + ceil(300_030/10000 = 30.003) = 200 + 31 = 231
    (3_333, 210),  # rounding: 200 + ceil(99_990/10000 = 9.999) = 200 + 10 = 210
    (1_600_000, 5000),  # exactly max: 200 + 48_000_000/10000 = 200 + 4_800 = 5_000
    (1_600_001, 5000),  # max clamp: 200 + ceil(48_000_030/10000 = 4_800.003) = 5_001 → 5_000
    (10_000_000, 5000),  # max clamp: 200 + 30_000 = 30_200 → 5_000
]

# T+1: 0 fen + 0.05 % (5 bp), at least 50, at most 1,500.
T1 = [
    (200_000, 100),  # fixed + %: 0 + 200_000×5/10000 = 0 + 100 = 100
    (200_001, 101),  # rounding: 0 + ceil(1_000_005/10000 = 100.0005) = 101
    (100_000, 50),  # exactly min: 0 + 500_000/10000 = 50
    (100_001, 51),  # rounding above min: ceil(500_005/10000 = 50.0005) = 51
    (99_999, 50),  # rounding up reaches min: ceil(499_995/10000 = 49.9995) = 50
    (10_000, 50),  # min clamp: 50_000/10000 = 5 → 50
    (1_000, 50),  # min clamp: ceil(5_000/10000 = 0.5) = 1 → 50
    (3_000_000, 1500),  # exactly max: 15_000_000/10000 = 1_500
    (3_000_001, 1500),  # max clamp: ceil(15_000_005/10000 = 1_500.0005) = 1_501 → 1_500
    (10_000_000, 1500),  # max clamp: 50_000_000/10000 = 5_000 → 1_500
]


@pytest.mark.parametrize(
    ("speed", "amount", "fee"),
    [("standard", a, f) for a, f in STANDARD] + [("instant", a, f) for a, f in INSTANT] + [("t1", a, f) for a, f in T1],
)
def test_default_fee_by_speed(speed, amount, fee):
    assert fee_for(policy=WithdrawalPolicy(), speed=speed, amount=amount) == fee


# The default policy's standard and instant mins never bind (fixed == min), so the min clamp of those two
# speeds is pinned under a policy that raises only the mins: standard min 300, instant min 600.
@pytest.mark.parametrize(
    ("speed", "amount", "fee"),
    [
        ("standard", 100_000, 300),  # 100 + 100 = 200 → min 300
        ("standard", 200_000, 300),  # exactly min: 100 + 2_000_000/10000 = 100 + 200 = 300
        ("standard", 200_001, 301),  # 100 + ceil(2_000_010/10000 = 200.001) = 100 + 201 = 301
        ("instant", 100_000, 600),  # 200 + 300 = 500 → min 600
        ("instant", 133_333, 600),  # 200 + ceil(3_999_990/10000 = 399.999) = 200 + 400 = 600, exactly min
        ("instant", 133_334, 601),  # 200 + ceil(4_000_020/10000 = 400.002) = 200 + 401 = 601
    ],
)
def test_min_clamp_for_standard_and_instant_under_raised_mins(speed, amount, fee):
    policy = WithdrawalPolicy(standard_fee_min=300, instant_fee_min=600)
    assert fee_for(policy=policy, speed=speed, amount=amount) == fee


# --- the fee charged is the fee quoted ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("speed", "fee"),
    [
        ("standard", 224),  # 100 + ceil(123_457×10/10000 = 123.457) = 100 + 124 = 224
        ("instant", 571),  # 200 + ceil(123_457×30/10000 = 370.371) = 200 + 371 = 571
        ("t1", 62),  # 0 + ceil(123_457×5/10000 = 61.7285) = 62 (above min 50)
    ],
)
@pytest.mark.django_db(transaction=True)
def test_submitted_withdrawal_is_charged_the_quoted_fee(merchant_alice, speed, fee):
    amount = 123_457
    quote = withdrawal_quote(amount=amount, speed=speed)
    assert (quote.fee, quote.net_amount) == (fee, amount - fee)
    account = merchant_alice.payout_accounts.get(is_default=True)
    w = withdrawal_submit(
        merchant_id=merchant_alice.pk, payout_account_id=account.pk, amount=amount, speed=speed, expected_fee=fee
    ).withdrawal
    w = Withdrawal.objects.get(pk=w.pk)
    assert (w.speed, w.amount, w.fee, w.net_amount) == (speed, amount, fee, amount - fee)
    assert (w.quote["fee"], w.quote["quoted_fee"]) == (fee, fee)
    assert wallet_balances(merchant_id=merchant_alice.pk).available == ALICE_CREDIT - amount  # fee included
    if speed == "t1":  # paid in the next working day's batch (tests/test_t1_batch.py): go there
        assert w.status == Status.APPROVED and w.pay_not_before is not None
        with time_machine.travel(w.pay_not_before, tick=False):
            payouts.sweep()
        w = Withdrawal.objects.get(pk=w.pk)
    assert w.status == Status.PAID  # the sandbox card pays at once: the fee is booked as revenue
    revenue = LedgerAccount.objects.get(kind=LedgerAccount.Kind.PLATFORM_FEE_REVENUE, currency=w.currency)
    assert revenue.balance == fee
    assert ledger_problems() == []
    assert withdrawal_ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_a_stale_quote_is_refused_and_holds_nothing(merchant_alice):
    quote = withdrawal_quote(amount=100_000, speed="standard")
    assert quote.fee == 200  # 100 + 100_000×10/10000 = 200
    policy = policy_current()
    policy.standard_fee_fixed = 150  # the fee changes between the quote and the confirmation
    policy.save()
    account = merchant_alice.payout_accounts.get(is_default=True)
    before = wallet_balances(merchant_id=merchant_alice.pk)
    transfers = Transfer.objects.count()
    with pytest.raises(DomainError) as exc:
        withdrawal_submit(
            merchant_id=merchant_alice.pk,
            payout_account_id=account.pk,
            amount=100_000,
            speed="standard",
            expected_fee=quote.fee,
        )
    # now: 150 + 100 = 250
    assert (exc.value.code, exc.value.details) == ("quote_expired", {"quoted_fee": 200, "fee": 250})
    assert wallet_balances(merchant_id=merchant_alice.pk) == before
    assert (before.available, before.held) == (ALICE_CREDIT, 0)
    assert Transfer.objects.count() == transfers
    assert not Withdrawal.objects.filter(merchant=merchant_alice).exists()
