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
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from channels.base import (
    ChannelRejected,
    ChannelUnknownOutcome,
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
from wallets.models import Transfer
from wallets.services import hold_post, transfer_reverse

from .models import Status, Withdrawal
from .services import _enqueue_payout, _enqueue_query, _lock, _move, _notify, _record, _release_hold

log = logging.getLogger(__name__)

POLL_BACKOFF = (5, 10, 20, 40, 80, 160, 300)
RETRY_BACKOFF = (5, 15, 45, 120, 300)
NO_CHANNEL_RETRY_SECONDS = 60
MAX_ADMISSION_TRIES = 5
PAYEE_CONFIRM_WINDOW_SECONDS = 24 * 3600


def _backoff(table: tuple[int, ...], n: int) -> int:
    return table[min(max(n, 0), len(table) - 1)]


def _schedule(w: Withdrawal, seconds: int) -> None:
    w.next_action_at = timezone.now() + timedelta(seconds=seconds)
    w.save(update_fields=["next_action_at", "updated_at"])


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


def payout_start(*, withdrawal_id: int) -> PayoutRequest | None:
    """Route an approved withdrawal and mark it processing. Returns the request to send, or None when there
    is nothing to do (state already moved, or no channel now: retried later)."""
    with transaction.atomic(durable=True):
        w = _lock(withdrawal_id)
        if w.status != Status.APPROVED:
            return None
        excluded = tuple(w.routing.get("excluded", []))
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
            _record(
                w,
                from_status=w.status,
                actor=None,
                actor_label="worker",
                reason="暂无可用通道，稍后自动重试",
                data={"excluded": list(excluded), "refused": refused},
            )
            _schedule(w, NO_CHANNEL_RETRY_SECONDS)
            return None
        w.channel_code = decision.channel_code
        w.routing = {**decision.explanation, "excluded": list(excluded), "history": w.routing.get("history", [])}
        if refused:
            w.routing["admission_refused"] = refused
        w.attempts += 1
        w.next_action_at = timezone.now() + timedelta(seconds=settings.WITHDRAWAL_REENQUEUE_AFTER_SECONDS)
        _move(
            w,
            "start_processing",
            actor_label="worker",
            reason=f"提交通道 {decision.channel_name}",
            data={"channel": decision.channel_code, "why": decision.explanation.get("why", "")},
            extra_fields=("channel_code", "routing", "attempts", "next_action_at"),
        )
        return _request_for(w)


def payout_run(*, withdrawal_id: int) -> None:
    """Worker entry: send an approved (or stalled processing) withdrawal to its channel."""
    request = payout_start(withdrawal_id=withdrawal_id)
    if request is None:
        w = Withdrawal.objects.filter(pk=withdrawal_id).first()
        if w is not None and w.status in (Status.PROCESSING, Status.OUTCOME_UNKNOWN):
            payout_query_run(withdrawal_id=withdrawal_id)  # already sent once: only a query may follow
        return
    w = Withdrawal.objects.get(pk=withdrawal_id)
    _send(w, request)


def _send(w: Withdrawal, request: PayoutRequest) -> None:
    code = w.channel_code
    started = time.monotonic()
    try:
        adapter = channel_adapter(code=code)
    except ValueError as exc:  # unreadable keys / config: nothing was sent, so this is a definite refusal
        log.error("channel %s cannot be built: %s", code, exc)
        channel_call_observe(channel_code=code, operation="submit", started=started, error=exc)
        payout_rejected(
            withdrawal_id=w.pk,
            error=ChannelRejected(
                f"channel config unusable: {exc}", reason_code="channel_misconfigured", action=ErrorAction.PAUSE_CHANNEL
            ),
        )
        return
    try:
        result = adapter.submit(request)
    except ChannelUnknownOutcome as exc:
        channel_call_observe(channel_code=code, operation="submit", started=started, error=exc)
        payout_mark_unknown(withdrawal_id=w.pk, detail=exc.message)
        return
    except ChannelRejected as exc:
        channel_call_observe(channel_code=code, operation="submit", started=started, error=exc)
        payout_rejected(withdrawal_id=w.pk, error=exc)
        return
    channel_call_observe(channel_code=code, operation="submit", started=started, result=result)
    payout_apply_result(withdrawal_id=w.pk, result=result, source="submit", expect_channel=code)


def payout_query_run(*, withdrawal_id: int) -> None:
    """Worker entry: ask the channel what became of a processing / unknown payout."""
    w = Withdrawal.objects.select_related("payout_account").get(pk=withdrawal_id)
    if w.status not in (Status.PROCESSING, Status.OUTCOME_UNKNOWN) or not w.channel_code:
        return
    code = w.channel_code
    started = time.monotonic()
    try:
        result = channel_adapter(code=code).query(w.order_no)
    except ChannelUnknownOutcome as exc:
        channel_call_observe(channel_code=code, operation="query", started=started, error=exc)
        payout_mark_unknown(withdrawal_id=w.pk, detail=f"query: {exc.message}")
        return
    except (ChannelRejected, ValueError) as exc:
        channel_call_observe(channel_code=code, operation="query", started=started, error=exc)
        exc = exc if isinstance(exc, ChannelRejected) else ChannelRejected(f"channel config unusable: {exc}")
        with transaction.atomic(durable=True):
            w = _lock(withdrawal_id)
            _record(w, from_status=w.status, actor=None, actor_label="worker", reason=f"查询失败：{exc.message}")
            _schedule(w, _backoff(POLL_BACKOFF, w.attempts))
        return
    channel_call_observe(channel_code=code, operation="query", started=started, result=result)
    if result.status == PayoutStatus.NOT_FOUND:
        # The channel definitely has no such payout: send it again under the SAME order number.
        with transaction.atomic(durable=True):
            w = _lock(withdrawal_id)
            if w.status not in (Status.PROCESSING, Status.OUTCOME_UNKNOWN) or w.channel_code != code:
                return
            if w.status == Status.OUTCOME_UNKNOWN:
                _move(w, "confirm_processing", actor_label="worker", reason="通道无此订单，按原订单号重新提交")
            w.attempts += 1
            w.save(update_fields=["attempts"])
        _send(Withdrawal.objects.get(pk=withdrawal_id), _request_for(w))
        return
    payout_apply_result(withdrawal_id=withdrawal_id, result=result, source="query", expect_channel=code)


def payout_mark_unknown(*, withdrawal_id: int, detail: str) -> None:
    with transaction.atomic(durable=True):
        w = _lock(withdrawal_id)
        if w.status not in (Status.PROCESSING, Status.OUTCOME_UNKNOWN):
            return
        n = w.routing.get("unknown_count", 0) + 1
        w.routing = {**w.routing, "unknown_count": n}
        delay = _backoff(POLL_BACKOFF, n - 1)
        w.next_action_at = timezone.now() + timedelta(seconds=delay)
        if w.status == Status.PROCESSING:
            _move(
                w,
                "mark_unknown",
                actor_label="worker",
                # Timeouts, lost answers and "system error" replies alike: the channel gave no definite answer.
                reason="通道未给出确定结果，正在查询确认",
                data={"detail": detail},
                extra_fields=("routing", "next_action_at"),
            )
        else:
            w.save(update_fields=["routing", "next_action_at", "updated_at"])
        _enqueue_query(w.pk, countdown=delay)


def payout_rejected(*, withdrawal_id: int, error: ChannelRejected) -> None:
    """The channel definitely did not take the payout; act by the error's class."""
    with transaction.atomic(durable=True):
        w = _lock(withdrawal_id)
        if w.status not in (Status.PROCESSING, Status.OUTCOME_UNKNOWN):
            return
        data = {"channel": w.channel_code, "code": error.reason_code, "provider_code": error.provider_code}
        attempt = {**data, "action": str(error.action), "at": timezone.now().isoformat()}
        history = [*w.routing.get("history", []), attempt]
        w.routing = {**w.routing, "history": history}
        if error.action == ErrorAction.FAIL:
            _fail(w, error.reason_code, error.message, data=data)
            return
        # A transient refusal is definite too ("not accepted"): when the channel's breaker has opened meanwhile,
        # fail over now instead of waiting for a sick channel.
        breaker_open = error.action in (ErrorAction.RETRY, ErrorAction.BACKOFF) and (
            breaker_views(codes=[w.channel_code])[w.channel_code].state == ChannelBreaker.State.OPEN
        )
        if error.action in (ErrorAction.REROUTE, ErrorAction.PAUSE_CHANNEL) or breaker_open:
            if error.action == ErrorAction.PAUSE_CHANNEL:
                why_paused = f"{error.provider_code or error.reason_code}: {error.message}"
                channel_pause(code=w.channel_code, reason=why_paused)
            channel_quota_release(code=w.channel_code, order_no=w.order_no)
            w.routing["excluded"] = sorted({*w.routing.get("excluded", []), w.channel_code})
            why = "通道熔断" if breaker_open else "无法出款"
            _move(
                w,
                "back_to_approved",
                actor_label="worker",
                reason=f"通道 {w.channel_code} {why}，改走其他通道",
                data=data,
                extra_fields=("routing",),
            )
            _enqueue_payout(w.pk)
            return
        table = RETRY_BACKOFF if error.action == ErrorAction.RETRY else tuple(t * 4 for t in RETRY_BACKOFF)
        delay = _backoff(table, len(history) - 1)
        w.next_action_at = timezone.now() + timedelta(seconds=delay)
        w.save(update_fields=["routing", "next_action_at", "updated_at"])
        _record(
            w,
            from_status=w.status,
            actor=None,
            actor_label="worker",
            reason=f"通道暂时不可用（{error.provider_code or error.reason_code}），{delay} 秒后按原订单号重试",
            data=data,
        )
        # Same order number on retry: a query first, which resubmits if the channel never got it.
        _enqueue_query(w.pk, countdown=delay)


def _fail(w: Withdrawal, code: str, detail: str, *, data: dict) -> None:
    if w.channel_code:
        channel_quota_release(code=w.channel_code, order_no=w.order_no)
    w.failure_code, w.failure_detail = code, detail[:255]
    _move(
        w,
        "mark_failed",
        actor_label="worker",
        reason=error_message(code),
        data=data,
        extra_fields=("failure_code", "failure_detail", "routing"),
    )
    _release_hold(w)
    _notify(w, "withdrawal_failed", "提现失败，资金已退回", f"{error_message(code)}。您可以修改收款账户后一键重试。")


def payout_apply_result(*, withdrawal_id: int, result: PayoutResult, source: str, expect_channel: str = "") -> str:
    """Apply a channel's definite answer (from submit, query, callback or statement). Never moves backwards;
    applying the same answer twice changes nothing the second time. ``expect_channel``: the channel that
    answered; an answer from a channel the payout has since left (after a definite failure there) is ignored.
    Returns what happened: "applied", "unchanged" or "ignored"."""
    with transaction.atomic(durable=True):
        w = _lock(withdrawal_id)
        before = w.status
        if expect_channel and w.channel_code != expect_channel:
            _record(
                w,
                from_status=w.status,
                actor=None,
                actor_label="worker",
                reason=f"忽略通道 {expect_channel} 的回复：当前通道为 {w.channel_code or '无'}",
                data={"source": source, "channel_status": str(result.status)},
            )
            return "ignored"
        data = {
            "source": source,
            "channel_status": str(result.status),
            "provider_code": result.provider_code,
            "channel_reference": result.channel_reference,
        }
        if result.amount is not None and result.amount != w.net_amount and result.status == PayoutStatus.SUCCEEDED:
            # Never book a payout whose amount the channel reports differently: operations must look.
            _record(
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
        if result.status == PayoutStatus.SUCCEEDED:
            if w.status in (Status.PROCESSING, Status.OUTCOME_UNKNOWN):
                _mark_paid(w, data=data)
                _notify(w, "withdrawal_paid", "提现已到账", f"{w.net_amount / 100:.2f} 元已打入您的收款账户。")
        elif result.status == PayoutStatus.FAILED:
            if w.status in (Status.PROCESSING, Status.OUTCOME_UNKNOWN):
                _fail(w, result.reason_code or "channel_error", result.message or result.provider_code, data=data)
        elif result.status == PayoutStatus.RETURNED:
            if w.status in (Status.PROCESSING, Status.OUTCOME_UNKNOWN):
                # Returned before we saw success: treat as paid then returned, so the ledger shows both.
                _mark_paid(w, data=data)
            if w.status == Status.PAID:
                _reverse(w, data=data)
        elif result.status in (PayoutStatus.PROCESSING, PayoutStatus.AWAITING_PAYEE):
            if w.status == Status.OUTCOME_UNKNOWN:
                _move(w, "confirm_processing", actor_label="worker", reason="通道已受理，处理中", data=data)
            if (
                w.status == Status.PROCESSING
                and result.status == PayoutStatus.AWAITING_PAYEE
                and "awaiting_payee_since" not in w.routing
            ):
                # WeChat merchant transfer: the payee must confirm in WeChat; unclaimed after 24 h it fails
                # (payee_unclaimed) and the hold is released. Until then we keep polling.
                w.routing = {**w.routing, "awaiting_payee_since": timezone.now().isoformat()}
                w.save(update_fields=["routing", "updated_at"])
                _record(
                    w,
                    from_status=w.status,
                    actor=None,
                    actor_label="worker",
                    reason="等待收款人在微信中确认收款（24 小时内未确认将自动退回）",
                    data=data,
                )
            if w.status == Status.PROCESSING:
                n = w.routing.get("poll_count", 0) + 1
                w.routing = {**w.routing, "poll_count": n}
                delay = _backoff(POLL_BACKOFF, n - 1)
                w.next_action_at = timezone.now() + timedelta(seconds=delay)
                w.save(update_fields=["routing", "next_action_at", "updated_at"])
                if source != "callback":
                    # A callback saying "still processing" must not start a second polling chain.
                    _enqueue_query(w.pk, countdown=delay)
        return "applied" if w.status != before else "unchanged"


def _mark_paid(w: Withdrawal, *, data: dict) -> None:
    """processing / unknown → paid: held money goes to the channel's clearing account and the fee to revenue."""
    w.paid_at = timezone.now()
    _move(w, "mark_paid", actor_label="worker", reason="已到账", data=data, extra_fields=("paid_at",))
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
    _move(
        w,
        "mark_reversed",
        actor_label="worker",
        reason=error_message("bank_returned"),
        data=data,
        extra_fields=("failure_code",),
    )
    _release_hold(w, suffix="return")
    _notify(w, "withdrawal_returned", "银行退票，资金已退回", "收款银行退回了这笔款项，金额已全额退回可提现余额。")


def payout_bank_return(*, withdrawal_id: int, source: str = "statement") -> str:
    return payout_apply_result(
        withdrawal_id=withdrawal_id,
        result=PayoutResult(order_no="", status=PayoutStatus.RETURNED, reason_code="bank_returned"),
        source=source,
    )


# --- unknown outcomes past their deadline -----------------------------------------------------------------
def payout_escalate_unknown(*, now=None) -> int:
    """Alert operations (once per withdrawal) about payouts whose outcome is still unknown after
    ``WITHDRAWAL_UNKNOWN_ESCALATE_SECONDS``. They stay where they are and keep being queried: only the
    channel's answer (or its statement) settles them."""
    now = now or timezone.now()
    deadline = now - timedelta(seconds=settings.WITHDRAWAL_UNKNOWN_ESCALATE_SECONDS)
    due = Withdrawal.objects.filter(status=Status.OUTCOME_UNKNOWN, state_changed_at__lte=deadline).exclude(
        routing__has_key="escalated_at"
    )
    raised = 0
    for wid in due.values_list("pk", flat=True)[:200]:
        with transaction.atomic(durable=True):
            w = _lock(wid)
            if w.status != Status.OUTCOME_UNKNOWN or "escalated_at" in w.routing or w.state_changed_at > deadline:
                continue
            w.routing = {**w.routing, "escalated_at": now.isoformat()}
            w.save(update_fields=["routing", "updated_at"])
            waited = int((now - w.state_changed_at).total_seconds())
            _record(
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
                    "unknown_count": w.routing.get("unknown_count", 0),
                },
                dedupe_key=f"unknown:{w.order_no}",
            )
            raised += int(created)
    return raised


# --- sweeper ----------------------------------------------------------------------------------------------
def sweep(*, now=None) -> dict[str, int]:
    """Re-enqueue anything that should have moved (a lost broker message loses nothing) and flag stuck ones."""
    from .tasks import payout_query, payout_run

    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.WITHDRAWAL_REENQUEUE_AFTER_SECONDS)
    counts = {"payout": 0, "query": 0, "stuck": 0, "escalated": payout_escalate_unknown(now=now)}
    approved = Withdrawal.objects.filter(status=Status.APPROVED).filter(
        next_action_at__lte=now
    ) | Withdrawal.objects.filter(status=Status.APPROVED, next_action_at__isnull=True, state_changed_at__lte=stale)
    for wid in approved.values_list("pk", flat=True)[:500]:
        payout_run.delay(wid)
        counts["payout"] += 1
    in_flight = Withdrawal.objects.filter(status__in=[Status.PROCESSING, Status.OUTCOME_UNKNOWN]).filter(
        next_action_at__lte=now
    ) | Withdrawal.objects.filter(
        status__in=[Status.PROCESSING, Status.OUTCOME_UNKNOWN], next_action_at__isnull=True, state_changed_at__lte=stale
    )
    for wid in in_flight.values_list("pk", flat=True)[:500]:
        payout_query.delay(wid)
        counts["query"] += 1
    stuck_before = now - timedelta(seconds=settings.WITHDRAWAL_STUCK_AFTER_SECONDS)
    stuck = Withdrawal.objects.filter(
        status__in=[Status.APPROVED, Status.PROCESSING, Status.OUTCOME_UNKNOWN, Status.SUBMITTED],
        state_changed_at__lte=stuck_before,
        stuck_flagged_at__isnull=True,
    ).exclude(  # waiting up to 24 h for a WeChat payee to confirm is normal, not stuck
        status=Status.PROCESSING,
        routing__has_key="awaiting_payee_since",
        state_changed_at__gt=now - timedelta(seconds=PAYEE_CONFIRM_WINDOW_SECONDS + 3600),
    )
    for w in stuck[:200]:
        with transaction.atomic():
            w = _lock(w.pk)
            if w.stuck_flagged_at is None and w.state_changed_at <= stuck_before:
                w.stuck_flagged_at = now
                w.save(update_fields=["stuck_flagged_at"])
                _record(
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
