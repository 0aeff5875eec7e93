"""Statement reconciliation: a channel's daily statement against our own record of its payouts.

channels knows nothing about withdrawals: the caller passes an ``OurSide`` that answers two questions in
channel terms (order number, amount, ``PayoutStatus``). The channel's statement is the final truth; every
disagreement becomes a ``StatementDifference`` for operations:

- ``missing_on_our_side``: the channel paid (or failed) an order number we have no payout for;
- ``missing_on_theirs``: we settled a payout on this channel that day and the statement does not list it;
- ``amount_mismatch``: both have it, amounts differ;
- ``status_mismatch``: both have it, outcomes differ (e.g. they say returned, we say paid; they say succeeded,
  we still do not know).

Importing the same day again refreshes the import: new differences are added, differences that are gone are
closed as ``auto_cleared``; what operations resolved stays resolved.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol

from django.db import transaction
from django.utils import timezone

from .base import PayoutStatus, StatementLine
from .health import channel_alert_raise
from .models import Channel, ChannelAlert, StatementDifference, StatementImport
from .services import channel_adapter

log = logging.getLogger(__name__)

# We learn of a settlement a little after the channel books it: a payout we settled this soon after midnight
# may sit on the channel's previous-day statement.
DAY_EDGE_SECONDS = 600


@dataclass(frozen=True)
class OurPayout:
    order_no: str
    amount: int  # fen sent to the channel
    status: str  # a PayoutStatus value: succeeded, failed, returned, processing
    settled_at: dt.datetime | None = None


class OurSide(Protocol):
    def settled_on(self, channel_code: str, date: dt.date) -> list[OurPayout]:
        """Our payouts on this channel whose final state was reached on ``date`` (local day)."""

    def lookup(self, channel_code: str, order_nos: list[str]) -> dict[str, OurPayout]:
        """Our payouts on this channel with these order numbers, whatever their state or day."""


@dataclass(frozen=True)
class Difference:
    order_no: str
    kind: str
    our_status: str = ""
    their_status: str = ""
    our_amount: int | None = None
    their_amount: int | None = None
    channel_reference: str = ""


def _consistent(ours: str, theirs: str) -> bool:
    # A payout the channel booked as paid that day and that its bank returned later is not a disagreement.
    return ours == theirs or (ours == PayoutStatus.RETURNED and theirs == PayoutStatus.SUCCEEDED)


def statement_compare(
    *,
    channel_code: str,
    date: dt.date,
    lines: list[StatementLine],
    our_side: OurSide,
    previous_day: list[StatementLine] | None = None,
) -> tuple[list[Difference], int]:
    """The differences between a statement and our side, and how many lines matched."""
    theirs = {line.order_no: line for line in lines}
    ours_day = {p.order_no: p for p in our_side.settled_on(channel_code, date)}
    elsewhere = our_side.lookup(channel_code, [o for o in theirs if o not in ours_day]) if theirs else {}
    differences: list[Difference] = []
    matched = 0
    for order_no, line in theirs.items():
        ours = ours_day.get(order_no) or elsewhere.get(order_no)
        their_status = str(line.status)
        if ours is None:
            differences.append(
                Difference(
                    order_no,
                    StatementDifference.Kind.MISSING_ON_OUR_SIDE,
                    their_status=their_status,
                    their_amount=line.amount,
                    channel_reference=line.channel_reference,
                )
            )
            continue
        found = False
        if ours.amount != line.amount:
            found = True
            differences.append(
                Difference(
                    order_no,
                    StatementDifference.Kind.AMOUNT_MISMATCH,
                    ours.status,
                    their_status,
                    ours.amount,
                    line.amount,
                    line.channel_reference,
                )
            )
        if not _consistent(ours.status, their_status):
            found = True
            differences.append(
                Difference(
                    order_no,
                    StatementDifference.Kind.STATUS_MISMATCH,
                    ours.status,
                    their_status,
                    ours.amount,
                    line.amount,
                    line.channel_reference,
                )
            )
        matched += 0 if found else 1
    day_start = dt.datetime.combine(date, dt.time(), tzinfo=timezone.get_current_timezone())
    earlier = {line.order_no for line in previous_day or []}
    for order_no, ours in ours_day.items():
        if order_no in theirs:
            continue
        near_midnight = ours.settled_at is not None and ours.settled_at < day_start + dt.timedelta(
            seconds=DAY_EDGE_SECONDS
        )
        if near_midnight and order_no in earlier:
            continue
        differences.append(
            Difference(order_no, StatementDifference.Kind.MISSING_ON_THEIRS, ours.status, our_amount=ours.amount)
        )
    return differences, matched


def statement_import(
    *, channel_code: str, date: dt.date, our_side: OurSide, now: dt.datetime | None = None
) -> StatementImport:
    """Fetch the channel's statement for ``date`` and record what disagrees with our side."""
    now = now or timezone.now()
    adapter = channel_adapter(code=channel_code)
    fetch = getattr(adapter, "fetch_statement", None)
    if fetch is None:
        raise ValueError(f"channel {channel_code} publishes no statements")
    lines: list[StatementLine] = fetch(date)
    previous: list[StatementLine] | None = None
    day_start = dt.datetime.combine(date, dt.time(), tzinfo=timezone.get_current_timezone())
    if any(
        p.settled_at and p.settled_at < day_start + dt.timedelta(seconds=DAY_EDGE_SECONDS)
        for p in our_side.settled_on(channel_code, date)
    ):
        previous = fetch(date - dt.timedelta(days=1))
    differences, matched = statement_compare(
        channel_code=channel_code, date=date, lines=lines, our_side=our_side, previous_day=previous
    )
    with transaction.atomic():
        statement, _ = StatementImport.objects.select_for_update().get_or_create(
            channel_code=channel_code, date=date, defaults={"imported_at": now}
        )
        statement.imported_at = now
        statement.line_count = len(lines)
        statement.matched_count = matched
        statement.total_amount = sum(line.amount for line in lines)
        current = set()
        for d in differences:
            current.add((d.order_no, d.kind))
            row, created = StatementDifference.objects.get_or_create(
                statement=statement,
                order_no=d.order_no,
                kind=d.kind,
                defaults={
                    "channel_code": channel_code,
                    "our_status": d.our_status,
                    "their_status": d.their_status,
                    "our_amount": d.our_amount,
                    "their_amount": d.their_amount,
                    "channel_reference": d.channel_reference,
                },
            )
            if not created and row.resolved_at is None:
                row.our_status, row.their_status = d.our_status, d.their_status
                row.our_amount, row.their_amount = d.our_amount, d.their_amount
                row.save(update_fields=["our_status", "their_status", "our_amount", "their_amount"])
        for row in statement.differences.filter(resolved_at__isnull=True):
            if (row.order_no, row.kind) not in current:
                row.resolved_at, row.resolved_by, row.resolution = now, "system", "auto_cleared"
                row.note = "re-import: no longer different"
                row.save(update_fields=["resolved_at", "resolved_by", "resolution", "note"])
        statement.difference_count = statement.differences.filter(resolved_at__isnull=True).count()
        statement.save()
        if statement.difference_count:
            channel_alert_raise(
                kind=ChannelAlert.Kind.RECONCILIATION,
                channel_code=channel_code,
                subject=date.isoformat(),
                title=f"通道 {channel_code} {date} 对账有 {statement.difference_count} 条差异待处理",
                detail={"statement": statement.pk, "differences": statement.difference_count},
                dedupe_key=f"recon:{channel_code}:{date.isoformat()}",
            )
    log.info(
        "statement %s %s: %s lines, %s matched, %s open differences",
        channel_code,
        date,
        len(lines),
        matched,
        statement.difference_count,
    )
    return statement


def statement_difference_close(*, difference_id: int, by: str, resolution: str, note: str = "") -> bool:
    """Mark a difference resolved (once). False when it was already resolved."""
    with transaction.atomic():
        row = StatementDifference.objects.select_for_update().get(pk=difference_id)
        if row.resolved_at is not None:
            return False
        row.resolved_at, row.resolved_by, row.resolution, row.note = timezone.now(), by[:150], resolution, note[:255]
        row.save(update_fields=["resolved_at", "resolved_by", "resolution", "note"])
        statement = StatementImport.objects.select_for_update().get(pk=row.statement_id)
        statement.difference_count = statement.differences.filter(resolved_at__isnull=True).count()
        statement.save(update_fields=["difference_count"])
    return True


def statement_channels() -> list[str]:
    """Enabled channels whose adapter publishes statements (not the in-process sandbox)."""
    return list(
        Channel.objects.filter(enabled=True)
        .exclude(adapter=Channel.Adapter.SANDBOX)
        .order_by("code")
        .values_list("code", flat=True)
    )


__all__ = [
    "OurPayout",
    "OurSide",
    "statement_channels",
    "statement_compare",
    "statement_difference_close",
    "statement_import",
]
