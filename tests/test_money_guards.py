"""Regression tests for the money-path defects of issue 7 that can be shown in-process:

- one withdrawal must never be paid by two channels (the payout lease, stale messages, leaving a channel only
  when every request sent there was refused, a success from any channel is booked or escalated);
- a failed withdrawal has at most one retry, linked both ways;
- every withdrawal at or above the dual-approval threshold waits for two different reviewers, whatever risk said.

The channel here is a scripted adapter (each test says what the provider answers, call by call) so that the
order of events is decided by the test, never by timing. The real protocols and processes are exercised by the
gateway end-to-end tests, the simulation and the chaos run.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from django.db import close_old_connections
from django.utils import timezone

from channels.base import (
    ChannelRejected,
    ChannelUnknownOutcome,
    ErrorAction,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
)
from channels.models import Channel, ChannelAlert
from config.errors import DomainError
from risk.contract import RiskDecision
from tests.factories import ALICE_CREDIT, ChannelFactory, MerchantFactory, card_for, reviewer
from wallets.selectors import ledger_problems, wallet_balances
from withdrawals import payouts
from withdrawals.attempts import excluded_channels
from withdrawals.models import Status, Withdrawal
from withdrawals.selectors import withdrawal_ledger_problems
from withdrawals.services import withdrawal_approve, withdrawal_retry, withdrawal_submit, withdrawal_verify

pytestmark = pytest.mark.django_db(transaction=True)


def fresh(w: Withdrawal | int) -> Withdrawal:
    return Withdrawal.objects.get(pk=w if isinstance(w, int) else w.pk)


def assert_books_ok() -> None:
    assert ledger_problems() == []
    assert withdrawal_ledger_problems() == []


def risk(monkeypatch: pytest.MonkeyPatch, outcome: str) -> None:
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda event: RiskDecision(outcome=outcome, score=1.0),  # type: ignore[arg-type]
    )


class Provider:
    """Scripted providers keyed by channel code, with their own book of payouts (what really left)."""

    def __init__(self) -> None:
        self.submits: dict[str, list[str]] = defaultdict(list)  # what each submit answers, in order
        self.queries: dict[str, list[str]] = defaultdict(list)  # what each query answers (else: the book)
        self.book: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, str]] = []
        self.during_call: Any = None  # a hook run while a call is "in flight"

    def adapter(self, *, code: str) -> Any:
        provider = self

        class Adapter:
            def __init__(self) -> None:
                self.code = code

            def submit(self, request: PayoutRequest) -> PayoutResult:
                provider.calls.append((code, "submit"))
                if provider.during_call:
                    provider.during_call()
                answer = provider.submits[code].pop(0) if provider.submits[code] else "pay"
                key = (code, request.order_no)
                if answer == "timeout":
                    raise ChannelUnknownOutcome("read timed out")
                if answer == "lost_then_pays":  # executed, but the answer is lost
                    provider.book[key] = "succeeded"
                    raise ChannelUnknownOutcome("connection reset")
                if answer == "maintenance":
                    raise ChannelRejected("维护中", reason_code="channel_unavailable", action=ErrorAction.REROUTE)
                if answer == "accept":
                    provider.book.setdefault(key, "processing")
                    return PayoutResult(order_no=request.order_no, status=PayoutStatus.PROCESSING)
                provider.book[key] = "succeeded"
                return PayoutResult(order_no=request.order_no, status=PayoutStatus.SUCCEEDED)

            def query(self, order_no: str) -> PayoutResult:
                provider.calls.append((code, "query"))
                if provider.during_call:
                    provider.during_call()
                answer = provider.queries[code].pop(0) if provider.queries[code] else ""
                if answer == "not_found":
                    return PayoutResult(order_no=order_no, status=PayoutStatus.NOT_FOUND)
                status = provider.book.get((code, order_no))
                if status is None:
                    return PayoutResult(order_no=order_no, status=PayoutStatus.NOT_FOUND)
                return PayoutResult(order_no=order_no, status=PayoutStatus(status))

        return Adapter()

    def paid(self, order_no: str) -> list[str]:
        return sorted(
            code for (code, order), status in self.book.items() if order == order_no and status == "succeeded"
        )


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch, transactional_db: Any) -> Provider:
    ChannelFactory(code="chan_a", name="通道A", adapter="sandbox", priority=10)
    ChannelFactory(code="chan_b", name="通道B", adapter="sandbox", priority=20)
    p = Provider()
    monkeypatch.setattr("withdrawals.payouts.channel_adapter", p.adapter)
    return p


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int | None]]:
    """Tasks the services enqueue, kept instead of run: the test decides when (and how often) they run."""
    tasks: list[tuple[str, int, int | None]] = []
    monkeypatch.setattr(
        "withdrawals.dispatch.enqueue_payout", lambda wid, seq=None, countdown=0: tasks.append(("payout", wid, seq))
    )
    monkeypatch.setattr(
        "withdrawals.dispatch.enqueue_query", lambda wid, seq=None, countdown=0: tasks.append(("query", wid, seq))
    )
    return tasks


def submit(merchant: Any, amount: int = 10_000, account: Any = None, speed: str = "standard") -> Withdrawal:
    account = account or merchant.payout_accounts.get(is_default=True)
    return withdrawal_submit(
        merchant_id=merchant.pk, payout_account_id=account.pk, amount=amount, speed=speed
    ).withdrawal


def run(task: tuple[str, int, int | None]) -> None:
    kind, wid, seq = task
    if kind == "payout":
        payouts.payout_run(withdrawal_id=wid, seq=seq)
    else:
        payouts.payout_query_run(withdrawal_id=wid, seq=seq)


# --- defect 1: one withdrawal, one channel payout -----------------------------------------------------------
def test_a_second_task_while_the_first_talks_to_the_channel_finds_nothing_to_do(provider, queued, monkeypatch):
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=500_000)
    w = submit(m)
    [first] = queued
    seen: list[str] = []

    def duplicate_arrives() -> None:  # the sweeper's copy runs while the first task waits for the channel
        provider.during_call = None
        payouts.payout_run(withdrawal_id=w.pk, seq=first[2])
        payouts.payout_query_run(withdrawal_id=w.pk)  # even an unfenced query finds the lease taken
        seen.append(fresh(w).status)

    provider.during_call = duplicate_arrives
    run(first)
    assert seen == [Status.PROCESSING]
    assert provider.calls == [(fresh(w).channel_code, "submit")]  # one call, no query, no second submit
    assert fresh(w).status == Status.PAID
    assert fresh(w).lease_token == ""
    assert_books_ok()


def test_two_copies_of_a_scheduled_query_run_once(provider, queued, monkeypatch):
    risk(monkeypatch, "allow")
    provider.submits["chan_a"] = ["accept"]
    provider.submits["chan_b"] = ["accept"]
    m = MerchantFactory(credit=500_000)
    w = submit(m)
    run(queued.pop())
    assert fresh(w).status == Status.PROCESSING
    [follow_up] = queued  # the chain's own follow-up
    queued.clear()
    payouts.sweep(now=fresh(w).next_action_at)  # the sweeper finds it due and enqueues its own copy
    [from_sweeper] = queued
    assert from_sweeper == follow_up  # same withdrawal, same sequence number
    calls_before = len(provider.calls)
    run(follow_up)
    run(from_sweeper)
    assert len(provider.calls) == calls_before + 1  # the stale copy asked nothing
    assert len(queued) == 2  # one follow-up per question asked, not one per copy
    assert queued[1][2] == fresh(w).action_seq


def test_a_refused_resubmit_does_not_leave_a_channel_that_may_still_pay(provider, queued, monkeypatch):
    """The double payout of issue 7: unknown at A, A says "not found", our resubmit to A is refused
    (maintenance) — yet the first request can still land at A. The payout must stay with A until A answers."""
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=500_000)
    w = submit(m)
    first_channel = "chan_a"
    provider.submits[first_channel] = ["timeout", "maintenance"]
    provider.queries[first_channel] = ["not_found"]
    run(queued.pop(0))
    w = fresh(w)
    assert (w.status, w.channel_code) == (Status.OUTCOME_UNKNOWN, first_channel)
    run(queued.pop(0))  # query: not found → resubmit under the same number → refused (maintenance)
    w = fresh(w)
    assert (w.status, w.channel_code) == (Status.PROCESSING, first_channel)  # stays with A
    assert (w.channel_sends, w.channel_refusals) == (2, 1)
    assert "chan_b" not in {code for code, _ in provider.calls}
    provider.book[(first_channel, w.order_no)] = "succeeded"  # the first request landed after all
    run(queued.pop(0))
    w = fresh(w)
    assert (w.status, w.channel_code) == (Status.PAID, first_channel)
    assert provider.paid(w.order_no) == [first_channel]
    assert_books_ok()


def test_after_the_in_flight_window_a_not_found_frees_the_payout_to_move(provider, queued, monkeypatch, settings):
    """A request that crashed mid-call: once no request can still be on its way, the channel's "not found" proves
    it never took effect, and a refusal of the resubmit may then move the payout."""
    import time_machine

    settings.PAYOUT_IN_FLIGHT_GRACE_SECONDS = 120
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=500_000)
    w = submit(m)
    provider.submits["chan_a"] = ["timeout", "maintenance"]
    provider.queries["chan_a"] = ["not_found"]
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        run(queued.pop(0))
        assert fresh(w).status == Status.OUTCOME_UNKNOWN
        clock.move_to(start + timedelta(seconds=121))
        run(queued.pop(0))  # not found, past the window → earlier send counted refused; resubmit refused too
        w = fresh(w)
        assert w.status == Status.APPROVED and excluded_channels(w) == ("chan_a",)
        assert "通道确认此前的请求均未生效" in [e.reason for e in w.events.all()]
        run(queued.pop(0))
    w = fresh(w)
    assert (w.status, w.channel_code) == (Status.PAID, "chan_b")
    assert provider.paid(w.order_no) == ["chan_b"]
    assert_books_ok()


def test_a_payout_every_channel_refused_once_tries_them_again(provider, queued, monkeypatch):
    risk(monkeypatch, "allow")
    provider.submits["chan_a"] = ["maintenance"]
    provider.submits["chan_b"] = ["maintenance"]
    m = MerchantFactory(credit=500_000)
    w = submit(m)
    run(queued.pop(0))
    run(queued.pop(0))
    w = fresh(w)
    assert w.status == Status.APPROVED and excluded_channels(w) == ("chan_a", "chan_b")
    run(queued.pop(0))  # no channel left: the exclusions are dropped, retried later
    w = fresh(w)
    assert w.status == Status.APPROVED and excluded_channels(w) == ()
    payouts.sweep(now=w.next_action_at)
    run(queued.pop(0))
    w = fresh(w)
    assert w.status == Status.PAID
    assert provider.paid(w.order_no) == [w.channel_code]
    assert_books_ok()


def test_a_first_request_refused_fails_over_at_once(provider, queued, monkeypatch):
    risk(monkeypatch, "allow")
    provider.submits["chan_a"] = ["maintenance"]
    m = MerchantFactory(credit=500_000)
    w = submit(m)
    run(queued.pop(0))
    assert fresh(w).status == Status.APPROVED  # nothing can be in flight at A: it refused the only request
    run(queued.pop(0))
    w = fresh(w)
    assert (w.status, w.channel_code) == (Status.PAID, "chan_b")
    assert provider.paid(w.order_no) == ["chan_b"]
    assert_books_ok()


def test_success_from_a_channel_the_payout_left_is_booked_there(provider, queued, monkeypatch):
    risk(monkeypatch, "allow")
    provider.submits["chan_a"] = ["maintenance"]
    m = MerchantFactory(credit=500_000)
    w = submit(m)
    run(queued.pop(0))
    assert fresh(w).status == Status.APPROVED
    outcome = payouts.payout_apply_result(
        withdrawal_id=w.pk,
        result=PayoutResult(order_no=w.order_no, status=PayoutStatus.SUCCEEDED),
        source="callback",
        expect_channel="chan_a",
    )
    assert outcome == "applied"
    w = fresh(w)
    assert (w.status, w.channel_code) == (Status.PAID, "chan_a")
    run(queued.pop(0))  # the failover message that was already queued finds nothing to do
    assert "chan_b" not in {code for code, _ in provider.calls}
    b = wallet_balances(merchant_id=m.pk)
    assert (b.available, b.held) == (500_000 - 10_000, 0)
    assert_books_ok()


def test_success_from_a_second_channel_after_paid_is_escalated_never_ignored(provider, queued, monkeypatch):
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=500_000)
    w = submit(m)
    run(queued.pop(0))
    w = fresh(w)
    assert (w.status, w.channel_code) == (Status.PAID, "chan_a")
    outcome = payouts.payout_apply_result(
        withdrawal_id=w.pk,
        result=PayoutResult(order_no=w.order_no, status=PayoutStatus.SUCCEEDED),
        source="callback",
        expect_channel="chan_b",
    )
    assert outcome == "escalated"
    [alert] = ChannelAlert.objects.filter(kind=ChannelAlert.Kind.PAID_ELSEWHERE)
    assert (alert.subject, alert.channel_code, alert.severity) == (w.order_no, "chan_b", "critical")
    assert fresh(w).stuck_flagged_at is not None
    assert "chan_b" in fresh(w).events.last().reason


def test_success_for_a_failed_withdrawal_is_escalated(provider, queued, monkeypatch):
    risk(monkeypatch, "allow")
    provider.submits["chan_a"] = ["timeout"]
    m = MerchantFactory(credit=500_000)
    w = submit(m)
    run(queued.pop(0))
    assert fresh(w).status == Status.OUTCOME_UNKNOWN
    payouts.payout_apply_result(  # the channel's callback says it failed: the hold goes back
        withdrawal_id=w.pk,
        result=PayoutResult(order_no=w.order_no, status=PayoutStatus.FAILED, reason_code="channel_error"),
        source="callback",
        expect_channel="chan_a",
    )
    assert fresh(w).status == Status.FAILED
    outcome = payouts.payout_apply_result(  # then its statement says it paid after all
        withdrawal_id=w.pk,
        result=PayoutResult(order_no=w.order_no, status=PayoutStatus.SUCCEEDED),
        source="statement",
        expect_channel="chan_a",
    )
    assert outcome == "escalated"
    [alert] = ChannelAlert.objects.filter(kind=ChannelAlert.Kind.PAID_ELSEWHERE)
    assert alert.subject == w.order_no and alert.severity == "critical"
    assert fresh(w).status == Status.FAILED and fresh(w).stuck_flagged_at is not None


def test_a_killed_workers_lease_expires_and_the_sweeper_takes_over(provider, queued, monkeypatch, settings):
    import time_machine

    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=500_000)
    w = submit(m)

    def killed(name: str, wid: int) -> None:
        if name == "payout.after_submit":
            raise RuntimeError("worker killed")

    from config.faults import crash_hook_install

    crash_hook_install(killed)
    try:
        with pytest.raises(RuntimeError, match="worker killed"):
            run(queued.pop(0))
    finally:
        crash_hook_install(None)
    w = fresh(w)
    assert w.status == Status.PROCESSING and w.lease_token  # the channel paid; we never heard
    assert payouts.sweep(now=w.lease_expires_at - timedelta(seconds=1))["query"] == 0  # not while leased
    with time_machine.travel(w.lease_expires_at + timedelta(seconds=1), tick=False):
        assert payouts.sweep()["query"] == 1
        run(queued.pop(0))
    w = fresh(w)
    assert w.status == Status.PAID
    assert provider.paid(w.order_no) == [w.channel_code]
    assert_books_ok()


# --- defect 3: at most one retry ------------------------------------------------------------------------------
def failed_withdrawal(merchant: Any) -> Withdrawal:
    w = withdrawal_submit(
        merchant_id=merchant.pk, payout_account_id=card_for(merchant, "11").pk, amount=10_000
    ).withdrawal
    w = fresh(w)
    assert (w.status, w.failure_code) == (Status.FAILED, "invalid_account")
    return w


def retry(w: Withdrawal, key: str, merchant: Any) -> Any:
    return withdrawal_retry(
        withdrawal_id=w.pk,
        merchant_id=merchant.pk,
        payout_account_id=merchant.payout_accounts.get(is_default=True).pk,
        idempotency_key=key,
        expected_fee=None,
    )


def test_a_failed_withdrawal_is_retried_once_and_linked_both_ways(sandbox_channel, monkeypatch):
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=500_000)
    failed = failed_withdrawal(m)
    first = retry(failed, "web-retry-1", m)
    assert first.created and first.withdrawal.retry_of_id == failed.pk
    assert fresh(first.withdrawal).status == Status.PAID
    assert fresh(failed).retried_by.pk == first.withdrawal.pk
    assert retry(failed, "web-retry-1", m).withdrawal.pk == first.withdrawal.pk  # a double click replays
    with pytest.raises(DomainError) as exc:
        retry(failed, "web-retry-2", m)  # the page reloaded: a new key, but the retry exists
    assert exc.value.code == "already_retried"
    assert exc.value.details == {"withdrawal": failed.pk, "retry": first.withdrawal.pk}
    assert Withdrawal.objects.filter(merchant=m).count() == 2
    assert wallet_balances(merchant_id=m.pk).available == 500_000 - 10_000


def test_a_withdrawal_that_did_not_fail_cannot_be_retried(sandbox_channel, monkeypatch):
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=500_000)
    paid = submit(m)
    with pytest.raises(DomainError) as exc:
        retry(paid, "web-retry-x", m)
    assert exc.value.code == "invalid_state"
    other = MerchantFactory(credit=500_000)
    failed = failed_withdrawal(other)
    with pytest.raises(DomainError) as exc:
        retry(failed, "web-retry-y", m)  # another merchant's withdrawal
    assert exc.value.code == "not_found"


def test_concurrent_retries_with_different_keys_make_one_withdrawal(sandbox_channel, monkeypatch):
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=500_000)
    failed = failed_withdrawal(m)
    codes: list[str] = []
    barrier = threading.Barrier(6)

    def click(i: int) -> None:
        try:
            barrier.wait()
            retry(failed, f"web-retry-{i}", m)
            codes.append("created")
        except DomainError as exc:
            codes.append(exc.code)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=click, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == ["already_retried"] * 5 + ["created"]
    assert Withdrawal.objects.filter(retry_of=failed).count() == 1
    assert wallet_balances(merchant_id=m.pk).available == 500_000 - 10_000
    assert_books_ok()


def test_the_page_shows_the_retry_instead_of_the_button(client, sandbox_channel, monkeypatch):
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=500_000, username="rita")
    failed = failed_withdrawal(m)
    client.force_login(m.users.first())
    page = client.get(f"/withdrawals/{failed.pk}/").content.decode()
    assert "重新提现" in page and "data-retried-by" not in page
    account = m.payout_accounts.get(is_default=True)
    form = {
        "idempotency_key": "web-retry-page-1",
        "payout_account": account.pk,
        "expected_fee": "110",
    }  # 1.00 + 0.1% of 100.00
    response = client.post(f"/withdrawals/{failed.pk}/retry/", form)
    retried = Withdrawal.objects.get(retry_of=failed)
    assert response.status_code == 302 and response["Location"] == f"/withdrawals/{retried.pk}/"
    page = client.get(f"/withdrawals/{failed.pk}/").content.decode()
    assert f'data-retried-by="{retried.pk}"' in page and "重新提现" not in page
    # a second click from a stale page goes to the existing retry and creates nothing
    response = client.post(f"/withdrawals/{failed.pk}/retry/", {**form, "idempotency_key": "web-retry-page-2"})
    assert response["Location"] == f"/withdrawals/{retried.pk}/"
    assert Withdrawal.objects.filter(merchant=m).count() == 2
    assert f'data-retry-of="{failed.pk}"' in client.get(f"/withdrawals/{retried.pk}/").content.decode()


# --- defect 4: large payouts never go out unseen ----------------------------------------------------------
@pytest.mark.parametrize("outcome", ["allow", "step_up", "review"])
def test_at_the_threshold_two_reviewers_decide_whatever_risk_said(sandbox_channel, monkeypatch, outcome):
    risk(monkeypatch, outcome)
    m = MerchantFactory(credit=ALICE_CREDIT)
    w = fresh(submit(m, amount=5_000_000))  # ¥50,000.00: the default threshold, inclusive
    assert (w.status, w.required_approvals) == (Status.PENDING_REVIEW, 2)
    bob, carol = reviewer("bob"), reviewer("carol")
    withdrawal_approve(withdrawal_id=w.pk, reviewer=bob)
    assert fresh(w).status == Status.PENDING_REVIEW
    withdrawal_approve(withdrawal_id=w.pk, reviewer=carol)
    w = fresh(w)
    assert w.status == Status.PAID
    assert sorted(a.reviewer.username for a in w.approvals.all()) == ["bob", "carol"]
    assert_books_ok()


def test_one_fen_under_the_threshold_risk_allow_pays_at_once(sandbox_channel, monkeypatch):
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=ALICE_CREDIT)
    w = fresh(submit(m, amount=4_999_999))
    assert (w.status, w.required_approvals) == (Status.PAID, 1)


def test_a_tier_can_lower_the_threshold(sandbox_channel, monkeypatch):
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=ALICE_CREDIT)
    from withdrawals.services import withdrawal_limits

    tier = withdrawal_limits(merchant=m).tier
    tier.dual_approval_threshold = 1_000_000
    tier.save()
    assert fresh(submit(m, amount=999_999)).status == Status.PAID
    w = fresh(submit(m, amount=1_000_000))
    assert (w.status, w.required_approvals) == (Status.PENDING_REVIEW, 2)


def test_a_passed_step_up_sends_a_large_amount_to_review(sandbox_channel, monkeypatch):
    """Even if a large withdrawal reached verification (a threshold lowered meanwhile), the code is not enough."""
    risk(monkeypatch, "step_up")
    m = MerchantFactory(credit=ALICE_CREDIT)
    w = fresh(submit(m, amount=100_000))
    assert w.status == Status.AWAITING_VERIFICATION
    Withdrawal.objects.filter(pk=w.pk).update(required_approvals=2)
    from tests.security_support import last_sms_code

    withdrawal_verify(withdrawal_id=w.pk, merchant_id=m.pk, code=last_sms_code(m.kyc.phone))
    assert fresh(w).status == Status.PENDING_REVIEW


def test_the_worker_refuses_a_large_payout_without_two_approvers(provider, queued, monkeypatch):
    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=ALICE_CREDIT)
    w = submit(m, amount=100_000)
    queued.clear()
    Withdrawal.objects.filter(pk=w.pk).update(status=Status.APPROVED, required_approvals=2)
    payouts.payout_run(withdrawal_id=w.pk)
    w = fresh(w)
    assert w.status == Status.APPROVED and w.stuck_flagged_at is not None
    assert provider.calls == []


def test_a_request_no_channel_could_ever_take_is_refused_up_front(transactional_db, monkeypatch):
    """Instant ¥60,000 to a card when no channel pays instant above ¥50,000: refused with a plain reason and
    nothing held, instead of waiting in "approved" for ever (found by the simulation)."""
    risk(monkeypatch, "allow")
    ChannelFactory(code="fast", speed_tiers=["instant"], max_amount=5_000_000)
    ChannelFactory(code="bank", speed_tiers=["standard", "t1"], max_amount=None)
    Channel.objects.exclude(code__in=["fast", "bank"]).delete()  # e.g. the migration's default sandbox channel
    m = MerchantFactory(credit=ALICE_CREDIT)
    with pytest.raises(DomainError) as exc:
        submit(m, amount=6_000_000, speed="instant")
    assert exc.value.code == "no_channel_for_request"
    assert Withdrawal.objects.filter(merchant=m).count() == 0
    assert wallet_balances(merchant_id=m.pk).available == ALICE_CREDIT
    assert fresh(submit(m, amount=6_000_000, speed="standard")).required_approvals == 2  # the other speed is fine
    assert fresh(submit(m, amount=400_000, speed="instant")).status == Status.PAID


# --- the payout attempt table (issue 9): every routing and every answer, append-only ---------------------------
def test_each_channel_and_each_answer_is_recorded_in_order_and_shown_in_the_api(provider, queued, monkeypatch):
    """Unknown at A, A says "not found", the resubmit is refused for maintenance (A may still pay: stays), A's
    next answer is "not found" past the window, the payout moves to B and B pays. The attempt table tells exactly
    that story, the API shows it without routing internals, and the excluded channel comes from the answers."""
    import time_machine

    risk(monkeypatch, "allow")
    m = MerchantFactory(credit=500_000)
    w = submit(m)
    provider.submits["chan_a"] = ["timeout", "maintenance"]
    provider.queries["chan_a"] = ["not_found"]
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        run(queued.pop(0))  # submit to A: timeout
        clock.move_to(start + timedelta(seconds=121))
        run(queued.pop(0))  # query A: not found → earlier send proven not sent; resubmit refused → leaves A
        run(queued.pop(0))  # routed to B, paid
    w = fresh(w)
    assert (w.status, w.channel_code, w.unknown_count) == (Status.PAID, "chan_b", 1)
    attempts = list(w.payout_attempts.order_by("number"))
    assert [(a.number, a.channel_code, a.channel_name, a.order_no, a.amount) for a in attempts] == [
        (1, "chan_a", "通道A", w.order_no, w.net_amount),
        (2, "chan_b", "通道B", w.order_no, w.net_amount),
    ]
    assert attempts[0].explanation["winner"] == "chan_a" and attempts[1].explanation["winner"] == "chan_b"
    assert w.current_attempt_id == attempts[1].pk
    story = [(a.attempt.number, a.source, a.outcome, a.reason_code, a.moved_on) for a in w.payout_answers.all()]
    assert story == [
        (1, "submit", "unknown", "", False),
        (1, "query", "not_found", "", False),
        (1, "query", "proven_not_sent", "", False),
        (1, "submit", "refused", "channel_unavailable", True),
        (2, "submit", "succeeded", "", False),
    ]
    assert excluded_channels(w) == ("chan_a",)

    from django.test import Client

    from accounts.services import api_key_create

    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=m)}")
    body = api.get(f"/api/v1/withdrawals/{w.pk}").json()
    assert [(a["number"], a["channel"], [x["outcome"] for x in a["answers"]]) for a in body["payout_attempts"]] == [
        (1, "通道A", ["unknown", "not_found", "proven_not_sent", "refused"]),
        (2, "通道B", ["succeeded"]),
    ]
    assert body["channel"]["name"] == "通道B"
    assert body["payout_attempts"][0]["started_at"].endswith("Z")  # UTC, like every time in the API
    shown = str(body["payout_attempts"])
    assert "chan_a" not in shown and "winner" not in shown  # codes and routing internals stay inside


def test_the_attempt_tables_refuse_updates_and_deletes(provider, queued, monkeypatch):
    from django.db import DatabaseError, connection, transaction

    from withdrawals.models import PayoutAnswer, PayoutAttempt

    risk(monkeypatch, "allow")
    w = submit(MerchantFactory(credit=500_000))
    run(queued.pop(0))
    assert fresh(w).status == Status.PAID
    for model in (PayoutAttempt, PayoutAnswer):
        table = model._meta.db_table
        for sql in (f"UPDATE {table} SET channel_code = 'x'", f"DELETE FROM {table}"):
            with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
                cur.execute(sql)
        assert model.objects.filter(withdrawal=w).count() == 1
