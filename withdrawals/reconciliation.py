"""Our side of statement reconciliation, and the resolution actions operations take on a difference.

channels.reconciliation fetches and compares; this module tells it what *we* booked (from withdrawals) and
turns a resolution into withdrawal services: a statement saying "returned" for a paid withdrawal reverses it
(``payout_bank_return``); a statement saying "succeeded" / "failed" for one we still do not know about first
asks the channel again, then applies the statement's answer through ``payout_apply_result`` (never backwards).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone

from channels.base import PayoutResult, PayoutStatus
from channels.health import channel_alert_raise
from channels.models import ChannelAlert, StatementDifference, StatementImport
from channels.reconciliation import OurPayout, statement_channels, statement_difference_close, statement_import
from config.errors import DomainError

from .models import Status, Withdrawal
from .payouts import payout_apply_result, payout_bank_return, payout_query_run

log = logging.getLogger(__name__)

OUR_STATUS = {
    Status.PAID: PayoutStatus.SUCCEEDED,
    Status.FAILED: PayoutStatus.FAILED,
    Status.REVERSED: PayoutStatus.RETURNED,
    Status.PROCESSING: PayoutStatus.PROCESSING,
    Status.OUTCOME_UNKNOWN: PayoutStatus.PROCESSING,
}


def _ours(w: Withdrawal) -> OurPayout:
    return OurPayout(
        order_no=w.order_no,
        amount=w.net_amount,
        status=str(OUR_STATUS.get(w.status, w.status)),
        settled_at=w.state_changed_at,
    )


class WithdrawalSide:
    """What we booked per channel, in the channel's terms. Failed withdrawals count only when a channel got the
    payout (it has a channel reference or reached the channel): a withdrawal that failed before any channel
    call is not on any statement."""

    def settled_on(self, channel_code: str, date: dt.date) -> list[OurPayout]:
        tz = timezone.get_current_timezone()
        start = dt.datetime.combine(date, dt.time(), tzinfo=tz)
        rows = Withdrawal.objects.filter(
            channel_code=channel_code,
            status__in=[Status.PAID, Status.FAILED, Status.REVERSED],
            state_changed_at__gte=start,
            state_changed_at__lt=start + dt.timedelta(days=1),
        ).exclude(status=Status.FAILED, channel_reference="")
        return [_ours(w) for w in rows.only("order_no", "net_amount", "status", "state_changed_at")]

    def lookup(self, channel_code: str, order_nos: list[str]) -> dict[str, OurPayout]:
        rows = Withdrawal.objects.filter(channel_code=channel_code, order_no__in=order_nos)
        return {w.order_no: _ours(w) for w in rows.only("order_no", "net_amount", "status", "state_changed_at")}


def reconcile_channels(*, date: dt.date, codes: list[str] | None = None) -> list[StatementImport]:
    """Import and match each statement-publishing channel's statement for ``date``. A channel that fails to
    deliver its statement is logged and skipped (the next run retries); the others still reconcile."""
    imports = []
    for code in codes or statement_channels():
        try:
            imports.append(statement_import(channel_code=code, date=date, our_side=WithdrawalSide()))
        except Exception:
            log.exception("statement import failed for %s %s", code, date)
    return imports


def statement_days_due(*, now: dt.datetime | None = None, codes: list[str] | None = None) -> dict[dt.date, list[str]]:
    """Days of the last ``RECONCILE_CATCHUP_DAYS`` whose statement of a channel is published (yesterday's from
    ``RECONCILE_HOUR``) and has not been imported yet, with the channels missing. A download that timed out or a
    reconcile message the broker lost is fetched again by the next run, not left unreconciled for good."""
    local = timezone.localtime(now or timezone.now())
    today = local.date()
    newest = today - dt.timedelta(days=1 if local.hour >= settings.RECONCILE_HOUR else 2)
    oldest = today - dt.timedelta(days=settings.RECONCILE_CATCHUP_DAYS)
    channels = codes or statement_channels()
    imported = set(
        StatementImport.objects.filter(channel_code__in=channels, date__gte=oldest, date__lte=newest).values_list(
            "channel_code", "date"
        )
    )
    due: dict[dt.date, list[str]] = {}
    day = oldest
    while day <= newest:
        missing = [code for code in channels if (code, day) not in imported]
        if missing:
            due[day] = missing
        day += dt.timedelta(days=1)
    return due


def reconcile_due(*, now: dt.datetime | None = None) -> list[StatementImport]:
    """The periodic run: import every published statement not imported yet (oldest first). A statement still
    missing a day after it was published raises an operations alert (once per channel and day)."""
    local = timezone.localtime(now or timezone.now())
    imports = []
    for day, codes in statement_days_due(now=local).items():
        done = reconcile_channels(date=day, codes=codes)
        imports.extend(done)
        got = {s.channel_code for s in done}
        if (local.date() - day).days >= 2:
            for code in codes:
                if code not in got:
                    channel_alert_raise(
                        kind=ChannelAlert.Kind.RECONCILIATION,
                        channel_code=code,
                        subject=day.isoformat(),
                        title=f"通道 {code} {day} 的对账单仍未能下载，当天未对账",
                        detail={"date": day.isoformat(), "missing_statement": True},
                        dedupe_key=f"recon-missing:{code}:{day.isoformat()}",
                    )
    return imports


def statement_difference_apply_channel(*, difference_id: int, by: str) -> str:
    """Make our books follow the channel's statement for one difference, through the withdrawal services."""
    d = StatementDifference.objects.get(pk=difference_id)
    if d.resolved_at is not None:
        raise DomainError("invalid_state", details={"difference": "already resolved"})
    w = Withdrawal.objects.filter(order_no=d.order_no, channel_code=d.channel_code).first()
    if d.kind != StatementDifference.Kind.STATUS_MISMATCH or w is None:
        raise DomainError(
            "invalid_state",
            details={
                "difference": "only a status mismatch on a payout we know can follow the statement; investigate and "
                "mark it resolved with a note"
            },
        )
    their = PayoutStatus(d.their_status)
    if their == PayoutStatus.RETURNED and w.status == Status.PAID:
        payout_bank_return(withdrawal_id=w.pk, source="statement")
    elif w.status in (Status.PROCESSING, Status.OUTCOME_UNKNOWN) and their in (
        PayoutStatus.SUCCEEDED,
        PayoutStatus.FAILED,
    ):
        payout_query_run(withdrawal_id=w.pk)  # the channel's own answer carries the reason; prefer it
        w = Withdrawal.objects.get(pk=w.pk)
        if w.status in (Status.PROCESSING, Status.OUTCOME_UNKNOWN):
            payout_apply_result(
                withdrawal_id=w.pk,
                source="statement",
                expect_channel=d.channel_code,
                result=PayoutResult(
                    order_no=w.order_no,
                    status=their,
                    amount=d.their_amount,
                    reason_code="" if their == PayoutStatus.SUCCEEDED else "channel_error",
                ),
            )
    else:
        raise DomainError(
            "invalid_state",
            details={
                "difference": f"we say {d.our_status}, the channel says {d.their_status}: money may have to move "
                "outside the payout flow; investigate and mark it resolved with a note"
            },
        )
    w = Withdrawal.objects.get(pk=w.pk)
    statement_difference_close(
        difference_id=d.pk, by=by, resolution="followed_statement", note=f"withdrawal now {w.status}"
    )
    return str(w.status)


def statement_difference_resolve(*, difference_id: int, by: str, note: str) -> None:
    if not note.strip():
        raise DomainError("invalid_request", details={"note": "say what was done"})
    if not statement_difference_close(difference_id=difference_id, by=by, resolution="noted", note=note):
        raise DomainError("invalid_state", details={"difference": "already resolved"})
