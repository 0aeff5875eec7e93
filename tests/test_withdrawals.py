from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels.models import SandboxPayout
from config.errors import DomainError
from risk.contract import RiskDecision
from risk.models import SmsMessage
from tests.factories import ALICE_CREDIT, MerchantFactory, card_for
from tests.security_support import last_sms_code
from wallets.selectors import ledger_problems, wallet_balances
from withdrawals import payouts
from withdrawals.fees import policy_current
from withdrawals.models import Status, Withdrawal
from withdrawals.selectors import withdrawal_ledger_problems
from withdrawals.services import (
    withdrawal_approve,
    withdrawal_cancel,
    withdrawal_quote,
    withdrawal_reject,
    withdrawal_submit,
    withdrawal_verify,
)

pytestmark = pytest.mark.django_db(transaction=True)


def submit(merchant, account=None, amount=10_000, **kw):
    account = account or merchant.payout_accounts.get(is_default=True)
    return withdrawal_submit(merchant_id=merchant.pk, payout_account_id=account.pk, amount=amount, **kw).withdrawal


def fresh(w: Withdrawal) -> Withdrawal:
    return Withdrawal.objects.get(pk=w.pk)


def assert_books_ok():
    assert ledger_problems() == []
    assert withdrawal_ledger_problems() == []


def test_happy_path_pays_net_and_keeps_the_fee(merchant_alice):
    quote = withdrawal_quote(amount=10_000, speed="standard")
    w = fresh(submit(merchant_alice, expected_fee=quote.fee))
    assert w.status == Status.PAID
    assert (w.fee, w.net_amount) == (quote.fee, 10_000 - quote.fee)
    b = wallet_balances(merchant_id=merchant_alice.pk)
    assert (b.available, b.held) == (ALICE_CREDIT - 10_000, 0)
    assert [e.to_status for e in w.events.all()] == ["submitted", "approved", "processing", "paid"]
    assert SandboxPayout.objects.get(order_no=w.order_no).amount == w.net_amount
    assert_books_ok()


@pytest.mark.parametrize(
    ("suffix", "code"), [("11", "invalid_account"), ("22", "account_frozen"), ("77", "name_mismatch")]
)
def test_permanent_failure_returns_everything_with_a_plain_reason(merchant_alice, suffix, code):
    w = fresh(submit(merchant_alice, card_for(merchant_alice, suffix)))
    assert (w.status, w.failure_code) == (Status.FAILED, code)
    assert wallet_balances(merchant_id=merchant_alice.pk).available == ALICE_CREDIT
    assert merchant_alice.notifications.filter(kind="withdrawal_failed").exists()
    assert_books_ok()


def test_timeout_is_unknown_then_a_query_settles_it_with_one_payout(merchant_alice, monkeypatch):
    queued = []
    monkeypatch.setattr("withdrawals.dispatch.enqueue_query", lambda wid, seq=None, countdown=0: queued.append(wid))
    w = fresh(submit(merchant_alice, card_for(merchant_alice, "33")))
    assert w.status == Status.OUTCOME_UNKNOWN
    assert wallet_balances(merchant_id=merchant_alice.pk).held == 10_000  # money stays held while unknown
    assert queued == [w.pk]
    payouts.payout_query_run(withdrawal_id=w.pk)
    payouts.payout_query_run(withdrawal_id=w.pk)  # a second query changes nothing
    w = fresh(w)
    assert w.status == Status.PAID
    assert SandboxPayout.objects.filter(order_no=w.order_no).count() == 1
    assert_books_ok()


def test_lost_request_is_resubmitted_under_the_same_order_number(merchant_alice):
    w = fresh(submit(merchant_alice, card_for(merchant_alice, "66")))
    assert w.status == Status.PAID  # unknown → query says not found → resubmit same number → paid
    row = SandboxPayout.objects.get(order_no=w.order_no)
    assert row.submissions == 2
    assert SandboxPayout.objects.count() == 1
    assert_books_ok()


def test_transient_errors_retry_under_the_same_order_number(merchant_alice):
    w = fresh(submit(merchant_alice, card_for(merchant_alice, "55")))
    assert w.status == Status.PAID
    assert SandboxPayout.objects.get(order_no=w.order_no).submissions == 3
    assert sum("重试" in e.reason for e in w.events.all()) == 2


def test_delayed_payout_is_polled_until_paid(merchant_alice, monkeypatch):
    monkeypatch.setattr("withdrawals.dispatch.enqueue_query", lambda wid, seq=None, countdown=0: None)
    w = fresh(submit(merchant_alice, card_for(merchant_alice, "44")))
    assert w.status == Status.PROCESSING
    payouts.payout_query_run(withdrawal_id=w.pk)
    assert fresh(w).status == Status.PROCESSING
    SandboxPayout.objects.filter(order_no=w.order_no).update(settle_after=timezone.now() - timedelta(seconds=1))
    payouts.payout_query_run(withdrawal_id=w.pk)
    assert fresh(w).status == Status.PAID


def test_bank_return_after_paid_reverses_with_new_transfers(merchant_alice):
    w = fresh(submit(merchant_alice))
    from channels.sandbox import SandboxAdapter

    SandboxAdapter("sandbox").bank_return(w.order_no)
    payouts.payout_bank_return(withdrawal_id=w.pk)
    payouts.payout_bank_return(withdrawal_id=w.pk)  # idempotent
    w = fresh(w)
    assert (w.status, w.failure_code) == (Status.REVERSED, "bank_returned")
    assert wallet_balances(merchant_id=merchant_alice.pk).available == ALICE_CREDIT
    assert_books_ok()


def test_a_callback_never_moves_a_final_withdrawal_backwards(merchant_alice):
    from channels.base import PayoutResult, PayoutStatus

    w = fresh(submit(merchant_alice))
    payouts.payout_apply_result(
        withdrawal_id=w.pk,
        result=PayoutResult(order_no=w.order_no, status=PayoutStatus.PROCESSING),
        source="callback",
    )
    payouts.payout_apply_result(
        withdrawal_id=w.pk,
        result=PayoutResult(order_no=w.order_no, status=PayoutStatus.FAILED),
        source="callback",
    )
    assert fresh(w).status == Status.PAID
    assert_books_ok()


def send_to_review(monkeypatch):
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda event: RiskDecision(outcome="review", score=50, reasons=["test_review"]),
    )


def test_large_amount_in_review_needs_two_different_approvers(
    merchant_alice, reviewer_bob, reviewer_carol, monkeypatch
):
    send_to_review(monkeypatch)
    policy = policy_current()
    amount = policy.dual_approval_threshold
    w = fresh(submit(merchant_alice, amount=amount))
    assert (w.status, w.required_approvals) == (Status.PENDING_REVIEW, 2)
    withdrawal_approve(withdrawal_id=w.pk, reviewer=reviewer_bob)
    assert fresh(w).status == Status.PENDING_REVIEW
    with pytest.raises(DomainError) as exc:
        withdrawal_approve(withdrawal_id=w.pk, reviewer=reviewer_bob)
    assert exc.value.code == "same_approver"
    withdrawal_approve(withdrawal_id=w.pk, reviewer=reviewer_carol)
    assert fresh(w).status == Status.PAID
    assert_books_ok()


def test_reject_returns_the_whole_amount_fee_included(merchant_alice, reviewer_bob, monkeypatch):
    send_to_review(monkeypatch)
    w = fresh(submit(merchant_alice, amount=2_500_000))
    assert w.status == Status.PENDING_REVIEW
    with pytest.raises(DomainError) as exc:
        withdrawal_reject(withdrawal_id=w.pk, reviewer=reviewer_bob, reason="  ")
    assert exc.value.code == "invalid_request"
    withdrawal_reject(withdrawal_id=w.pk, reviewer=reviewer_bob, reason="收款人与商户无关")
    w = fresh(w)
    assert (w.status, w.failure_detail) == (Status.REJECTED, "收款人与商户无关")
    assert wallet_balances(merchant_id=merchant_alice.pk).available == ALICE_CREDIT
    assert_books_ok()


def test_only_reviewers_can_review(merchant_alice, django_user_model, monkeypatch):
    send_to_review(monkeypatch)
    w = fresh(submit(merchant_alice, amount=2_500_000))
    nobody = django_user_model.objects.create_user("nobody", password="x")
    with pytest.raises(DomainError) as exc:
        withdrawal_approve(withdrawal_id=w.pk, reviewer=nobody)
    assert exc.value.code == "permission_denied"


def test_merchant_can_cancel_while_waiting_for_review(merchant_alice, merchant_mallory, monkeypatch):
    send_to_review(monkeypatch)
    w = fresh(submit(merchant_alice, amount=2_500_000))
    with pytest.raises(DomainError) as exc:
        withdrawal_cancel(withdrawal_id=w.pk, merchant_id=merchant_mallory.pk)
    assert exc.value.code == "not_found"  # another merchant's withdrawal is not even acknowledged
    withdrawal_cancel(withdrawal_id=w.pk, merchant_id=merchant_alice.pk)
    assert fresh(w).status == Status.CANCELLED
    assert wallet_balances(merchant_id=merchant_alice.pk).available == ALICE_CREDIT
    with pytest.raises(DomainError) as exc:
        withdrawal_cancel(withdrawal_id=w.pk, merchant_id=merchant_alice.pk)
    assert exc.value.code == "invalid_state"


def test_step_up_code_is_bound_expires_and_cannot_be_replayed(merchant_alice, monkeypatch):
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda event: RiskDecision(outcome="step_up", score=30, reasons=["new_device"]),
    )
    w = fresh(submit(merchant_alice))
    assert w.status == Status.AWAITING_VERIFICATION
    code = last_sms_code()  # what the phone received; SmsMessage keeps the text masked
    assert code not in SmsMessage.objects.latest("created_at").text
    with pytest.raises(DomainError) as exc:
        withdrawal_verify(
            withdrawal_id=w.pk, merchant_id=merchant_alice.pk, code="000000" if code != "000000" else "111111"
        )
    assert exc.value.code == "verification_failed"
    withdrawal_verify(withdrawal_id=w.pk, merchant_id=merchant_alice.pk, code=code)
    assert fresh(w).status == Status.PAID
    from risk.stepup import stepup_verify

    with pytest.raises(DomainError) as exc:
        stepup_verify(subject=f"withdrawal:{w.pk}", code=code)  # replay refused
    assert exc.value.code == "verification_failed"


def test_step_up_locks_after_too_many_wrong_codes(merchant_alice, monkeypatch):
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal", lambda event: RiskDecision(outcome="step_up", score=30)
    )
    w = fresh(submit(merchant_alice))
    codes = []
    for _ in range(5):
        with pytest.raises(DomainError) as exc:
            withdrawal_verify(withdrawal_id=w.pk, merchant_id=merchant_alice.pk, code="abcdef")
        codes.append(exc.value.code)
    # No sixth guess: after STEPUP_MAX_FAILURES wrong codes a reviewer decides.
    assert codes == ["verification_failed"] * 4 + ["verification_exhausted"]
    assert fresh(w).status == Status.PENDING_REVIEW


def test_risk_block_rejects_and_releases(merchant_alice, monkeypatch):
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda event: RiskDecision(outcome="block", score=99, reasons=["device_farm"]),
    )
    w = fresh(submit(merchant_alice))
    assert (w.status, w.failure_code, w.risk_reasons) == (Status.REJECTED, "risk_blocked", ["device_farm"])
    assert wallet_balances(merchant_id=merchant_alice.pk).available == ALICE_CREDIT


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("unverified", "kyc_required"),
        ("other_name", "card_name_mismatch"),
        ("below_min", "amount_below_minimum"),
        ("over_max", "limit_exceeded"),
        ("stale_quote", "quote_expired"),
        ("frozen", "merchant_frozen"),
    ],
)
def test_refusals_write_nothing(sandbox_channel, setup, code):
    from accounts.models import Merchant

    m = MerchantFactory(verified=setup != "unverified")
    account = card_for(m, holder_name="赵六") if setup == "other_name" else m.payout_accounts.get(is_default=True)
    if setup == "frozen":
        Merchant.objects.filter(pk=m.pk).update(status="frozen")
    amount = {"below_min": 999, "over_max": policy_current().max_per_withdrawal + 1}.get(setup, 10_000)
    kwargs = {"expected_fee": 1} if setup == "stale_quote" else {}
    before = wallet_balances(merchant_id=m.pk)
    with pytest.raises(DomainError) as exc:
        withdrawal_submit(merchant_id=m.pk, payout_account_id=account.pk, amount=amount, **kwargs)
    assert exc.value.code == code
    assert wallet_balances(merchant_id=m.pk) == before
    assert not Withdrawal.objects.filter(merchant=m).exists()


def test_daily_count_and_amount_limits(merchant_alice):
    policy = policy_current()
    policy.daily_count_limit = 2
    policy.save()
    submit(merchant_alice)
    submit(merchant_alice)
    with pytest.raises(DomainError) as exc:
        submit(merchant_alice)
    assert (exc.value.code, exc.value.details["limit"]) == ("limit_exceeded", "daily_count")
    policy.daily_count_limit = 20
    policy.daily_amount_limit = 25_000
    policy.save()
    with pytest.raises(DomainError) as exc:
        submit(merchant_alice)
    assert (exc.value.code, exc.value.details["limit"]) == ("limit_exceeded", "daily_amount")


def test_failed_withdrawals_do_not_use_up_the_daily_count(merchant_alice):
    policy = policy_current()
    policy.daily_count_limit = 1
    policy.save()
    submit(merchant_alice, card_for(merchant_alice, "11"))
    assert fresh(submit(merchant_alice)).status == Status.PAID


def test_idempotency_key_returns_the_same_withdrawal_and_refuses_a_different_body(merchant_alice):
    a = withdrawal_submit(
        merchant_id=merchant_alice.pk,
        payout_account_id=merchant_alice.payout_accounts.first().pk,
        amount=10_000,
        idempotency_key="k-1",
    )
    b = withdrawal_submit(
        merchant_id=merchant_alice.pk,
        payout_account_id=merchant_alice.payout_accounts.first().pk,
        amount=10_000,
        idempotency_key="k-1",
    )
    assert (a.created, b.created, a.withdrawal.pk) == (True, False, b.withdrawal.pk)
    with pytest.raises(DomainError) as exc:
        withdrawal_submit(
            merchant_id=merchant_alice.pk,
            payout_account_id=merchant_alice.payout_accounts.first().pk,
            amount=20_000,
            idempotency_key="k-1",
        )
    assert exc.value.code == "idempotency_key_reused"
    assert Withdrawal.objects.count() == 1


@pytest.mark.parametrize("amount", [0, -1, 1.5, "100", True, None, 10**13])
def test_bad_amounts_are_refused(merchant_alice, amount):
    with pytest.raises(DomainError) as exc:
        submit(merchant_alice, amount=amount)
    assert exc.value.code == "invalid_amount"
    assert wallet_balances(merchant_id=merchant_alice.pk).available == ALICE_CREDIT


def test_someone_elses_payout_account_is_refused(merchant_alice, merchant_mallory):
    with pytest.raises(DomainError) as exc:
        submit(merchant_alice, merchant_mallory.payout_accounts.first())
    assert exc.value.code == "payout_account_invalid"
