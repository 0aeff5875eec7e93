"""The payout half of a withdrawal, run by the worker.

approved ──route, commit──▶ processing ──submit──▶ paid / failed / (stays processing, polled)
                                       └─timeout─▶ outcome_unknown ──query──▶ paid / failed / processing
A timeout never fails a withdrawal: only a definite channel answer moves money. The order number never
changes, so a resubmit (after the channel said "not found") can never pay twice.

Every call to a channel is recorded for its health (channels.health): the breaker there stops routing new
payouts to a failing channel. A payout already at a channel stays there until the channel answers; it moves to
another channel only after a definite non-acceptance (reroute, paused, or a transient refusal while the
channel's breaker is open). Each submitted payout counts against the channel's daily quota; a definite failure
gives that back.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from channels.base import (
    ChannelRejected,
    ChannelUnknownOutcome,
    ConfigError,
    ErrorAction,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
)
from channels.health import breaker_views, channel_alert_raise, channel_call_observe
from channels.models import ChannelAlert, ChannelBreaker
from channels.services import (
    channel_adapter,
    channel_pause,
    channel_quota_release,
    channel_reserve,
    channel_route,
)
from config.errors import error_message
from config.faults import crash_point
from wallets.models import Transfer
from wallets.services import hold_post, transfer_reverse

from . import dispatch
from .attempts import Outcome, answer_record, attempt_open, excluded_channels, exclusions_reset, refusal_count
from .lifecycle import (
    withdrawal_event_record,
    withdrawal_hold_release,
    withdrawal_lock,
    withdrawal_notify,
    withdrawal_transition,
)
from .models import Status, Withdrawal

log = logging.getLogger(__name__)

POLL_BACKOFF = (5, 10, 20, 40, 80, 160, 300)
RETRY_BACKOFF = (5, 15, 45, 120, 300)
NO_CHANNEL_RETRY_SECONDS = 60
MAX_ADMISSION_TRIES = 5
PAYEE_CONFIRM_WINDOW_SECONDS = 24 * 3600
IN_FLIGHT = (Status.PROCESSING, Status.OUTCOME_UNKNOWN)
LEASE_FIELDS = ["lease_token", "lease_expires_at", "action_seq", "next_action_at", "updated_at"]


def _backoff(table: tuple[int, ...], n: int) -> int:
    return table[min(max(n, 0), len(table) - 1)]


def _schedule(w: Withdrawal, seconds: int) -> None:
    w.next_action_at = timezone.now() + timedelta(seconds=seconds)
    w.save(update_fields=["next_action_at", "updated_at"])


# --- the lease: one task at a time talks to the channel for a withdrawal ------------------------------------
def _claim(w: Withdrawal, *, seq: int | None) -> str | None:
    """Take the lease of a locked withdrawal. None when another task holds it, or when this message is stale
    (it was scheduled under an older ``action_seq``: a duplicate of work someone already claimed).
    The caller saves LEASE_FIELDS in the same transaction."""
    now = timezone.now()
    if w.lease_expires_at is not None and w.lease_expires_at > now:
        return None
    if seq is not None and seq != w.action_seq:
        return None
    token = secrets.token_hex(8)
    w.lease_token = token
    w.lease_expires_at = now + timedelta(seconds=settings.PAYOUT_LEASE_SECONDS)
    w.action_seq += 1
    w.next_action_at = w.lease_expires_at  # if this task dies, the sweeper looks again once the lease expired
    return token


def _past_grace(w: Withdrawal, now: datetime) -> bool:
    """No request we sent to the current channel can still be on its way there."""
    sent = w.channel_last_sent_at
    return sent is None or now - sent >= timedelta(seconds=settings.PAYOUT_IN_FLIGHT_GRACE_SECONDS)


def _holds(w: Withdrawal, lease: str | None) -> bool:
    return bool(lease) and w.lease_token == lease


def _release(w: Withdrawal) -> None:
    """Give the lease back (in the transaction that applies the channel's answer; the caller saves)."""
    w.lease_token = ""
    w.lease_expires_at = None


def _save_lease(w: Withdrawal, *more: str) -> None:
    w.save(update_fields=[*LEASE_FIELDS, *more])


def _enqueue_query(w: Withdrawal, *, countdown: int = 0) -> None:
    """Follow up with a query under the current sequence number (a stale copy will find nothing to do)."""
    dispatch.enqueue_query(w.pk, seq=w.action_seq, countdown=countdown)


def _request_for(w: Withdrawal) -> PayoutRequest:
    account = w.payout_account
    return PayoutRequest(
        order_no=w.order_no,
        amount=w.net_amount,
        currency=w.currency,
        account_kind=account.kind,  # type: ignore[arg-type]
        account_number=account.account_number,
        holder_name=account.holder_name,
        bank_code=account.bank_code,
        remark=f"提现 {w.order_no}",
    )


@dataclass(frozen=True)
class Started:
    request: PayoutRequest
    channel_code: str
    lease: str


def payout_start(*, withdrawal_id: int, seq: int | None = None) -> Started | None:
    """Route an approved withdrawal, claim its lease and mark it processing. Returns what to send, or None when
    there is nothing to do (state already moved, a duplicate message, or no channel now: retried later)."""
    with transaction.atomic(durable=True):
        w = withdrawal_lock(withdrawal_id)
        if w.status != Status.APPROVED:
            return None
        if w.pay_not_before is not None and w.pay_not_before > timezone.now():
            return None  # T+1: its batch has not come yet (the sweeper sends it then); an early message does nothing
        if w.required_approvals > 1 and w.approvals.values("reviewer").distinct().count() < w.required_approvals:
            # Defence in depth: a withdrawal that needs two approvers never reaches a channel without them.
            if w.stuck_flagged_at is None:
                w.stuck_flagged_at = timezone.now()
                w.save(update_fields=["stuck_flagged_at"])
                withdrawal_event_record(
                    w, from_status=w.status, actor=None, actor_label="worker", reason="缺少双人审核，拒绝出款"
                )
            return None
        token = _claim(w, seq=seq)
        if token is None:
            return None
        excluded = excluded_channels(w)
        refused: dict[str, str] = {}
        decision = None
        for _ in range(MAX_ADMISSION_TRIES):
            # The route is a read; admission (breaker probe, today's quota) is decided under the channel's lock.
            decision = channel_route(
                account_kind=w.payout_account.kind, amount=w.net_amount, speed=w.speed, exclude=(*excluded, *refused)
            )
            if decision is None:
                break
            admission = channel_reserve(code=decision.channel_code, order_no=w.order_no, amount=w.net_amount)
            if admission.admitted:
                break
            refused[decision.channel_code] = admission.reason
            decision = None
        if decision is None:
            withdrawal_event_record(
                w,
                from_status=w.status,
                actor=None,
                actor_label="worker",
                reason="暂无可用通道，稍后自动重试" + ("（将重新尝试此前拒绝过的通道）" if excluded else ""),
                data={"excluded": list(excluded), "refused": refused},
            )
            if excluded:
                # Every channel it could use refused it once (maintenance, breaker): those were definite
                # refusals, nothing is pending there, so they may be tried again rather than waiting for ever.
                exclusions_reset(w)
                w.save(update_fields=["exclusions_reset_after"])
            _release(w)
            w.next_action_at = timezone.now() + timedelta(seconds=NO_CHANNEL_RETRY_SECONDS)
            _save_lease(w)
            return None
        w.channel_code = decision.channel_code
        attempt_open(w, decision=decision, admission_refused=refused)
        w.attempts += 1
        # A new channel: this is the first request it gets for the order number.
        w.channel_sends, w.channel_refusals = 1, 0
        w.channel_last_sent_at = timezone.now()
        withdrawal_transition(
            w,
            "start_processing",
            actor_label="worker",
            reason=f"提交通道 {decision.channel_name}",
            data={"channel": decision.channel_code, "why": decision.explanation.get("why", "")},
            extra_fields=(
                "channel_code",
                "current_attempt",
                "attempts",
                "channel_sends",
                "channel_refusals",
                "channel_last_sent_at",
                "lease_token",
                "lease_expires_at",
                "action_seq",
                "next_action_at",
            ),
        )
        return Started(_request_for(w), w.channel_code, token)


def payout_run(*, withdrawal_id: int, seq: int | None = None) -> None:
    """Worker entry: send an approved (or stalled processing) withdrawal to its channel."""
    started = payout_start(withdrawal_id=withdrawal_id, seq=seq)
    if started is None:
        w = Withdrawal.objects.filter(pk=withdrawal_id).only("status").first()
        if w is not None and w.status in IN_FLIGHT:
            payout_query_run(withdrawal_id=withdrawal_id, seq=seq)  # already sent once: only a query may follow
        return
    _send(withdrawal_id, started)


def _send(withdrawal_id: int, started: Started) -> None:
    code, request, lease = started.channel_code, started.request, started.lease
    began = time.monotonic()
    try:
        adapter = channel_adapter(code=code)
    except ConfigError as exc:  # unreadable keys / config: nothing was sent, so this is a definite refusal
        log.error("channel %s cannot be built: %s", code, exc)
        channel_call_observe(channel_code=code, operation="submit", started=began, error=exc)
        payout_rejected(
            withdrawal_id=withdrawal_id,
            lease=lease,
            error=ChannelRejected(
                f"channel config unusable: {exc}", reason_code="channel_misconfigured", action=ErrorAction.PAUSE_CHANNEL
            ),
        )
        return
    crash_point("payout.before_submit", withdrawal_id)
    try:
        result = adapter.submit(request)
    except ChannelUnknownOutcome as exc:
        channel_call_observe(channel_code=code, operation="submit", started=began, error=exc)
        crash_point("payout.after_submit", withdrawal_id)
        payout_mark_unknown(withdrawal_id=withdrawal_id, detail=exc.message, lease=lease)
        return
    except ChannelRejected as exc:
        channel_call_observe(channel_code=code, operation="submit", started=began, error=exc)
        crash_point("payout.after_submit", withdrawal_id)
        payout_rejected(withdrawal_id=withdrawal_id, error=exc, lease=lease)
        return
    channel_call_observe(channel_code=code, operation="submit", started=began, result=result)
    crash_point("payout.after_submit", withdrawal_id)
    payout_apply_result(withdrawal_id=withdrawal_id, result=result, source="submit", expect_channel=code, lease=lease)


def payout_query_run(*, withdrawal_id: int, seq: int | None = None) -> None:
    """Worker entry: ask the channel what became of a processing / unknown payout. Runs only with the lease."""
    with transaction.atomic(durable=True):
        w = withdrawal_lock(withdrawal_id)
        if w.status not in IN_FLIGHT or not w.channel_code:
            return
        lease = _claim(w, seq=seq)
        if lease is None:
            return  # another task is talking to the channel, or this message is a stale duplicate
        _save_lease(w)
        code = w.channel_code
    began = time.monotonic()
    try:
        result = channel_adapter(code=code).query(w.order_no)
    except ChannelUnknownOutcome as exc:
        channel_call_observe(channel_code=code, operation="query", started=began, error=exc)
        payout_mark_unknown(withdrawal_id=withdrawal_id, detail=f"query: {exc.message}", lease=lease, source="query")
        return
    except (ChannelRejected, ConfigError) as exc:
        channel_call_observe(channel_code=code, operation="query", started=began, error=exc)
        exc = exc if isinstance(exc, ChannelRejected) else ChannelRejected(f"channel config unusable: {exc}")
        with transaction.atomic(durable=True):
            w = withdrawal_lock(withdrawal_id)
            if not _holds(w, lease):
                return
            _release(w)
            answer_record(
                w,
                outcome=Outcome.QUERY_FAILED,
                source="query",
                channel_code=code,
                reason_code=exc.reason_code,
                provider_code=exc.provider_code,
                detail=exc.message,
            )
            withdrawal_event_record(
                w, from_status=w.status, actor=None, actor_label="worker", reason=f"查询失败：{exc.message}"
            )
            w.next_action_at = timezone.now() + timedelta(seconds=_backoff(POLL_BACKOFF, w.attempts))
            _save_lease(w)
        return
    channel_call_observe(channel_code=code, operation="query", started=began, result=result)
    if result.status == PayoutStatus.NOT_FOUND:
        # The channel has no such payout: send it again under the SAME order number, still under our lease.
        with transaction.atomic(durable=True):
            w = withdrawal_lock(withdrawal_id)
            if not _holds(w, lease):
                return  # the lease expired and another task took over
            if w.status not in IN_FLIGHT or w.channel_code != code:
                _release(w)
                _save_lease(w)
                return
            answer_record(w, outcome=Outcome.NOT_FOUND, source="query", provider_code=result.provider_code)
            if w.status == Status.OUTCOME_UNKNOWN:
                withdrawal_transition(
                    w, "confirm_processing", actor_label="worker", reason="通道无此订单，按原订单号重新提交"
                )
            now = timezone.now()
            if _past_grace(w, now) and w.channel_refusals < w.channel_sends:
                # Asked after every earlier request's window closed, the channel has none of them: they never
                # took effect and never will, so they count as refused (a later refusal may move the payout).
                withdrawal_event_record(
                    w,
                    from_status=w.status,
                    actor=None,
                    actor_label="worker",
                    reason="通道确认此前的请求均未生效",
                    data={"sends": w.channel_sends, "refusals": w.channel_refusals},
                )
                answer_record(
                    w,
                    outcome=Outcome.PROVEN_NOT_SENT,
                    source="query",
                    detail=f"{w.channel_sends - w.channel_refusals} earlier request(s) never took effect",
                )
                w.channel_refusals = w.channel_sends
            w.attempts += 1
            w.channel_sends += 1
            w.channel_last_sent_at = now
            w.lease_expires_at = now + timedelta(seconds=settings.PAYOUT_LEASE_SECONDS)
            w.next_action_at = w.lease_expires_at
            w.save(
                update_fields=[
                    "attempts",
                    "channel_sends",
                    "channel_refusals",
                    "channel_last_sent_at",
                    "lease_expires_at",
                    "next_action_at",
                    "updated_at",
                ]
            )
            request = _request_for(w)
        _send(withdrawal_id, Started(request, code, lease))
        return
    payout_apply_result(withdrawal_id=withdrawal_id, result=result, source="query", expect_channel=code, lease=lease)


def payout_mark_unknown(*, withdrawal_id: int, detail: str, lease: str | None = None, source: str = "submit") -> None:
    with transaction.atomic(durable=True):
        w = withdrawal_lock(withdrawal_id)
        if lease is not None and not _holds(w, lease):
            return  # we lost the lease: the task that holds it now decides
        _release(w)
        if w.status not in IN_FLIGHT:
            _save_lease(w)
            return
        answer_record(w, outcome=Outcome.UNKNOWN, source=source, detail=detail)
        w.unknown_count += 1
        delay = _backoff(POLL_BACKOFF, w.unknown_count - 1)
        w.next_action_at = timezone.now() + timedelta(seconds=delay)
        if w.status == Status.PROCESSING:
            withdrawal_transition(
                w,
                "mark_unknown",
                actor_label="worker",
                # Timeouts, lost answers and "system error" replies alike: the channel gave no definite answer.
                reason="通道未给出确定结果，正在查询确认",
                data={"detail": detail},
                extra_fields=("unknown_count", *LEASE_FIELDS),
            )
        else:
            _save_lease(w, "unknown_count")
        _enqueue_query(w, countdown=delay)


def payout_rejected(*, withdrawal_id: int, error: ChannelRejected, lease: str | None = None) -> None:
    """The channel definitely did not take this request; act by the error's class. The payout leaves the
    channel only when every request we sent there was refused like this one: then nothing can be in flight
    there and the channel has not paid the order number."""
    with transaction.atomic(durable=True):
        w = withdrawal_lock(withdrawal_id)
        if lease is not None and not _holds(w, lease):
            return
        _release(w)
        if w.status not in IN_FLIGHT:
            _save_lease(w)
            return
        w.channel_refusals += 1
        data = {"channel": w.channel_code, "code": error.reason_code, "provider_code": error.provider_code}
        fail = error.action == ErrorAction.FAIL
        # A transient refusal is definite too ("not accepted"): when the channel's breaker has opened meanwhile,
        # fail over now instead of waiting for a sick channel.
        breaker_open = error.action in (ErrorAction.RETRY, ErrorAction.BACKOFF) and (
            breaker_views(codes=[w.channel_code])[w.channel_code].state == ChannelBreaker.State.OPEN
        )
        wants_to_leave = error.action in (ErrorAction.REROUTE, ErrorAction.PAUSE_CHANNEL) or breaker_open
        may_leave = w.channel_refusals >= w.channel_sends
        answer_record(
            w,
            outcome=Outcome.REFUSED,
            source="submit",
            reason_code=error.reason_code,
            provider_code=error.provider_code,
            action=str(error.action),
            moved_on=not fail and wants_to_leave and may_leave,
            detail=error.message,
        )
        if fail:
            # The payee account itself is refused (invalid, frozen, name mismatch): no request can pay it.
            _save_lease(w, "channel_refusals")
            _fail(w, error.reason_code, error.message, data=data)
            return
        if error.action == ErrorAction.PAUSE_CHANNEL:
            channel_pause(code=w.channel_code, reason=f"{error.provider_code or error.reason_code}: {error.message}")
        if wants_to_leave and may_leave:
            channel_quota_release(code=w.channel_code, order_no=w.order_no)
            why = "通道熔断" if breaker_open else "无法出款"
            w.next_action_at = None
            withdrawal_transition(
                w,
                "back_to_approved",
                actor_label="worker",
                reason=f"通道 {w.channel_code} {why}，改走其他通道",
                data=data,
                extra_fields=("channel_refusals", *LEASE_FIELDS),
            )
            dispatch.enqueue_payout(w.pk, seq=w.action_seq)
            return
        table = RETRY_BACKOFF if error.action == ErrorAction.RETRY else tuple(t * 4 for t in RETRY_BACKOFF)
        delay = _backoff(table, refusal_count(w) - 1)
        if wants_to_leave and w.channel_last_sent_at is not None:
            # It wants to move but an earlier request may still land here: ask again as soon as that window has
            # closed (a "not found" then frees it), not after a long back-off.
            grace_ends = w.channel_last_sent_at + timedelta(seconds=settings.PAYOUT_IN_FLIGHT_GRACE_SECONDS)
            delay = min(delay, max(5, int((grace_ends - timezone.now()).total_seconds()) + 1))
        w.next_action_at = timezone.now() + timedelta(seconds=delay)
        _save_lease(w, "channel_refusals")
        stay = "" if not wants_to_leave else "；此前的请求可能仍在通道处理中，先查询确认，不换通道"
        withdrawal_event_record(
            w,
            from_status=w.status,
            actor=None,
            actor_label="worker",
            reason=f"通道暂时不可用（{error.provider_code or error.reason_code}），{delay} 秒后按原订单号重试{stay}",
            data={**data, "sends": w.channel_sends, "refusals": w.channel_refusals},
        )
        # Same order number on retry: a query first, which resubmits if the channel never got it.
        _enqueue_query(w, countdown=delay)


def _fail(w: Withdrawal, code: str, detail: str, *, data: dict) -> None:
    if w.channel_code:
        channel_quota_release(code=w.channel_code, order_no=w.order_no)
    w.failure_code, w.failure_detail = code, detail[:255]
    withdrawal_transition(
        w,
        "mark_failed",
        actor_label="worker",
        reason=error_message(code),
        data=data,
        extra_fields=("failure_code", "failure_detail"),
    )
    withdrawal_hold_release(w)
    withdrawal_notify(w, "withdrawal_failed", failure_code=w.failure_code, failure_detail=w.failure_detail)


def payout_apply_result(
    *, withdrawal_id: int, result: PayoutResult, source: str, expect_channel: str = "", lease: str | None = None
) -> str:
    """Apply a channel's definite answer (from submit, query, callback or statement). Never moves backwards;
    applying the same answer twice changes nothing the second time. ``expect_channel``: the channel that
    answered. ``lease``: the task's lease when a payout task applies its own call's answer (given back here).
    A SUCCEEDED answer from any channel for our order number is money that left: it is booked, or, when it
    cannot be (another channel paid it too, or the withdrawal was already given back), operations are alerted.
    Returns what happened: "applied", "unchanged", "ignored" or "escalated"."""
    with transaction.atomic(durable=True):
        w = withdrawal_lock(withdrawal_id)
        before = w.status
        held = _holds(w, lease)
        if held:
            _release(w)
            _save_lease(w)
        data = {
            "source": source,
            "channel_status": str(result.status),
            "provider_code": result.provider_code,
            "channel_reference": result.channel_reference,
        }
        answering = expect_channel or w.channel_code
        answer_record(
            w,
            outcome=str(result.status),
            source=source,
            channel_code=answering,
            reason_code=result.reason_code,
            provider_code=result.provider_code,
            channel_reference=result.channel_reference,
            detail=result.message,
        )
        money_left = result.status in (PayoutStatus.SUCCEEDED, PayoutStatus.RETURNED)
        if expect_channel and w.channel_code != expect_channel:
            if money_left:
                return _paid_elsewhere(w, channel=expect_channel, data=data)
            withdrawal_event_record(
                w,
                from_status=w.status,
                actor=None,
                actor_label="worker",
                reason=f"忽略通道 {expect_channel} 的回复：当前通道为 {w.channel_code or '无'}",
                data=data,
            )
            return "ignored"
        if result.amount is not None and result.amount != w.net_amount and result.status == PayoutStatus.SUCCEEDED:
            # Never book a payout whose amount the channel reports differently: operations must look.
            withdrawal_event_record(
                w,
                from_status=w.status,
                actor=None,
                actor_label="worker",
                reason=f"通道金额不符：{result.amount} ≠ {w.net_amount}",
                data=data,
            )
            w.stuck_flagged_at = timezone.now()
            w.save(update_fields=["stuck_flagged_at"])
            return "ignored"
        if result.channel_reference and not w.channel_reference:
            w.channel_reference = result.channel_reference[:100]
            w.save(update_fields=["channel_reference"])
        if money_left and w.status == Status.APPROVED and w.channel_code == answering:
            # The payout had left this channel (it refused every request we knew of) yet the channel paid: the
            # money is gone, so take it back to this channel and book it before anything is sent elsewhere.
            withdrawal_transition(
                w, "start_processing", actor_label="worker", reason=f"通道 {answering} 回报已出款", data=data
            )
        if money_left and w.status in (Status.FAILED, Status.REJECTED, Status.CANCELLED):
            return _paid_elsewhere(w, channel=answering, data=data)
        if result.status == PayoutStatus.SUCCEEDED:
            if w.status in IN_FLIGHT:
                _mark_paid(w, data=data)
                withdrawal_notify(w, "withdrawal_paid", net_amount=w.net_amount)
        elif result.status == PayoutStatus.FAILED:
            if w.status in IN_FLIGHT:
                _fail(w, result.reason_code or "channel_error", result.message or result.provider_code, data=data)
        elif result.status == PayoutStatus.RETURNED:
            if w.status in IN_FLIGHT:
                # Returned before we saw success: treat as paid then returned, so the ledger shows both.
                _mark_paid(w, data=data)
            if w.status == Status.PAID:
                _reverse(w, data=data)
        elif result.status in (PayoutStatus.PROCESSING, PayoutStatus.AWAITING_PAYEE):
            if w.status == Status.OUTCOME_UNKNOWN:
                withdrawal_transition(
                    w, "confirm_processing", actor_label="worker", reason="通道已受理，处理中", data=data
                )
            if (
                w.status == Status.PROCESSING
                and result.status == PayoutStatus.AWAITING_PAYEE
                and w.awaiting_payee_since is None
            ):
                # WeChat merchant transfer: the payee must confirm in WeChat; unclaimed after 24 h it fails
                # (payee_unclaimed) and the hold is released. Until then we keep polling.
                w.awaiting_payee_since = timezone.now()
                w.save(update_fields=["awaiting_payee_since", "updated_at"])
                withdrawal_event_record(
                    w,
                    from_status=w.status,
                    actor=None,
                    actor_label="worker",
                    reason="等待收款人在微信中确认收款（24 小时内未确认将自动退回）",
                    data=data,
                )
            if w.status == Status.PROCESSING and held:
                # Only the task that asked schedules the next question: a callback or a statement saying
                # "still processing" must not start a second polling chain.
                w.poll_count += 1
                delay = _backoff(POLL_BACKOFF, w.poll_count - 1)
                w.next_action_at = timezone.now() + timedelta(seconds=delay)
                w.save(update_fields=["poll_count", "next_action_at", "updated_at"])
                _enqueue_query(w, countdown=delay)
        return "applied" if w.status != before else "unchanged"


def _paid_elsewhere(w: Withdrawal, *, channel: str, data: dict) -> str:
    """A channel says it paid (or returned) our order number where we cannot simply book it: the withdrawal is
    processing or paid at another channel, or its money was already given back. If it is still in flight
    elsewhere, the payment is booked on the answering channel (money that left is never ignored) and the other
    channel is watched; in every case operations get a critical alert."""
    booked = False
    other = w.channel_code
    if w.status in IN_FLIGHT and data["channel_status"] == str(PayoutStatus.SUCCEEDED):
        w.channel_code = channel
        w.save(update_fields=["channel_code"])
        _mark_paid(w, data={**data, "also_at": other})
        booked = True
    w.stuck_flagged_at = timezone.now()
    w.save(update_fields=["stuck_flagged_at"])
    what = "已按该通道入账" if booked else "无法自动入账"
    withdrawal_event_record(
        w,
        from_status=w.status,
        actor=None,
        actor_label="worker",
        reason=f"通道 {channel} 回报已出款（我方：{w.get_status_display()} @ {other or '无'}），{what}，已通知运营",
        data={**data, "answering_channel": channel, "our_channel": other, "booked": booked},
    )
    channel_alert_raise(
        kind=ChannelAlert.Kind.PAID_ELSEWHERE,
        channel_code=channel,
        subject=w.order_no,
        title=f"提现 {w.order_no}：通道 {channel} 回报出款，与我方记录（{w.status} @ {other or '-'}）不符",
        severity=ChannelAlert.Severity.CRITICAL,
        detail={"withdrawal": w.pk, "order_no": w.order_no, "status": w.status, "booked": booked, **data},
        dedupe_key=f"paid_elsewhere:{w.order_no}:{channel}",
    )
    log.error("withdrawal %s: channel %s reports money out while we have %s at %s", w.pk, channel, w.status, other)
    return "applied" if booked else "escalated"


def _mark_paid(w: Withdrawal, *, data: dict) -> None:
    """processing / unknown → paid: held money goes to the channel's clearing account and the fee to revenue."""
    w.paid_at = timezone.now()
    withdrawal_transition(w, "mark_paid", actor_label="worker", reason="已到账", data=data, extra_fields=("paid_at",))
    crash_point("payout.before_ledger_post", w.pk)
    hold_post(
        merchant_id=w.merchant_id,
        amount=w.amount,
        fee=w.fee,
        reference=f"withdrawal:{w.pk}:post",
        channel_code=w.channel_code,
    )


def _reverse(w: Withdrawal, *, data: dict) -> None:
    """A bank return after success: reverse the posting (a new transfer), then give the money back."""
    post = Transfer.objects.get(reference=f"withdrawal:{w.pk}:post")
    transfer_reverse(transfer=post, reference=f"withdrawal:{w.pk}:reverse", description=f"bank return {w.order_no}")
    w.failure_code = "bank_returned"
    withdrawal_transition(
        w,
        "mark_reversed",
        actor_label="worker",
        reason=error_message("bank_returned"),
        data=data,
        extra_fields=("failure_code",),
    )
    withdrawal_hold_release(w, suffix="return")
    withdrawal_notify(w, "withdrawal_returned")


def payout_bank_return(*, withdrawal_id: int, source: str = "statement") -> str:
    return payout_apply_result(
        withdrawal_id=withdrawal_id,
        result=PayoutResult(order_no="", status=PayoutStatus.RETURNED, reason_code="bank_returned"),
        source=source,
    )


# --- unknown outcomes past their deadline -----------------------------------------------------------------
def payout_escalate_unknown(*, now: datetime | None = None) -> int:
    """Alert operations (once per withdrawal) about payouts whose outcome is still unknown after
    ``WITHDRAWAL_UNKNOWN_ESCALATE_SECONDS``. They stay where they are and keep being queried: only the
    channel's answer (or its statement) settles them."""
    now = now or timezone.now()
    deadline = now - timedelta(seconds=settings.WITHDRAWAL_UNKNOWN_ESCALATE_SECONDS)
    due = Withdrawal.objects.filter(
        status=Status.OUTCOME_UNKNOWN, state_changed_at__lte=deadline, escalated_at__isnull=True
    )
    raised = 0
    for wid in due.values_list("pk", flat=True)[:200]:
        with transaction.atomic(durable=True):
            w = withdrawal_lock(wid)
            if w.status != Status.OUTCOME_UNKNOWN or w.escalated_at is not None or w.state_changed_at > deadline:
                continue
            w.escalated_at = now
            w.save(update_fields=["escalated_at", "updated_at"])
            waited = int((now - w.state_changed_at).total_seconds())
            withdrawal_event_record(
                w,
                from_status=w.status,
                actor=None,
                actor_label="sweeper",
                reason=f"结果未知已超过 {waited} 秒，已通知运营；系统继续向通道查询",
                data={"channel": w.channel_code, "waited_seconds": waited},
            )
            _, created = channel_alert_raise(
                kind=ChannelAlert.Kind.UNKNOWN_OUTCOME,
                channel_code=w.channel_code,
                subject=w.order_no,
                title=f"提现 {w.order_no} 在通道 {w.channel_code} 结果未知已 {waited // 60} 分钟",
                detail={
                    "withdrawal": w.pk,
                    "order_no": w.order_no,
                    "amount": w.net_amount,
                    "waited_seconds": waited,
                    "unknown_count": w.unknown_count,
                },
                dedupe_key=f"unknown:{w.order_no}",
            )
            raised += int(created)
    return raised


# --- sweeper ----------------------------------------------------------------------------------------------
def sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue anything that should have moved (a lost broker message loses nothing) and flag stuck ones."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.WITHDRAWAL_REENQUEUE_AFTER_SECONDS)
    counts = {"payout": 0, "query": 0, "stuck": 0, "escalated": payout_escalate_unknown(now=now)}
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)  # nobody is talking to the channel
    due = Q(next_action_at__lte=now) | Q(next_action_at__isnull=True, state_changed_at__lte=stale)
    approved = Withdrawal.objects.filter(free & due, status=Status.APPROVED)
    for wid, seq in approved.values_list("pk", "action_seq")[:500]:
        dispatch.enqueue_payout(wid, seq=seq)
        counts["payout"] += 1
    in_flight = Withdrawal.objects.filter(free & due, status__in=IN_FLIGHT)
    for wid, seq in in_flight.values_list("pk", "action_seq")[:500]:
        dispatch.enqueue_query(wid, seq=seq)
        counts["query"] += 1
    stuck_before = now - timedelta(seconds=settings.WITHDRAWAL_STUCK_AFTER_SECONDS)
    stuck = (
        Withdrawal.objects.filter(
            status__in=[Status.APPROVED, Status.PROCESSING, Status.OUTCOME_UNKNOWN, Status.SUBMITTED],
            state_changed_at__lte=stuck_before,
            stuck_flagged_at__isnull=True,
        )
        .exclude(  # a T+1 withdrawal waiting for its batch is on time until the batch is overdue
            status=Status.APPROVED, pay_not_before__gt=stuck_before
        )
        .exclude(  # waiting up to 24 h for a WeChat payee to confirm is normal, not stuck
            status=Status.PROCESSING,
            awaiting_payee_since__isnull=False,
            state_changed_at__gt=now - timedelta(seconds=PAYEE_CONFIRM_WINDOW_SECONDS + 3600),
        )
    )
    for w in stuck[:200]:
        with transaction.atomic():
            w = withdrawal_lock(w.pk)
            if w.stuck_flagged_at is None and w.state_changed_at <= stuck_before:
                w.stuck_flagged_at = now
                w.save(update_fields=["stuck_flagged_at"])
                withdrawal_event_record(
                    w,
                    from_status=w.status,
                    actor=None,
                    actor_label="sweeper",
                    reason=f"在「{w.get_status_display()}」停留超过 "
                    f"{settings.WITHDRAWAL_STUCK_AFTER_SECONDS} 秒，已通知运营",
                )
                log.warning("withdrawal %s stuck in %s since %s", w.pk, w.status, w.state_changed_at)
                counts["stuck"] += 1
    return counts
