"""statement_compare with a stand-in for our side: each kind of difference, and nothing else."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from channels.base import PayoutStatus, StatementLine
from channels.reconciliation import OurPayout, statement_compare

DAY = dt.date(2026, 3, 2)
NOON = dt.datetime(2026, 3, 2, 12, 0, tzinfo=timezone.get_current_timezone())


class Ours:
    def __init__(self, day: list[OurPayout], elsewhere: tuple[OurPayout, ...] = ()) -> None:
        self.day, self.elsewhere = day, list(elsewhere)

    def settled_on(self, channel_code, date):
        return self.day

    def lookup(self, channel_code, order_nos):
        return {p.order_no: p for p in self.elsewhere + self.day if p.order_no in order_nos}


def line(order_no, amount=1000, status=PayoutStatus.SUCCEEDED):
    return StatementLine(order_no, "R" + order_no, amount, status, NOON)


def test_each_kind_of_difference_and_only_those():
    ours = Ours(
        day=[
            OurPayout("A", 1000, "succeeded", NOON),
            OurPayout("B", 1000, "succeeded", NOON),
            OurPayout("C", 1000, "succeeded", NOON),
            OurPayout("D", 1000, "failed", NOON),
            OurPayout("E", 1000, "returned", NOON),
            OurPayout("GONE", 1000, "succeeded", NOON),
        ],
        elsewhere=[OurPayout("LATE", 1000, "processing"), OurPayout("YDAY", 500, "succeeded")],
    )
    lines = [
        line("A"),
        line("B", 999),
        line("C", status=PayoutStatus.RETURNED),
        line("D", status=PayoutStatus.FAILED),
        line("E"),  # paid that day, returned since: consistent
        line("LATE"),  # they succeeded, we still do not know
        line("YDAY", 500),  # settled on another of our days: matched by lookup
        line("STRANGER", 42),
    ]
    diffs, matched = statement_compare(channel_code="bd", date=DAY, lines=lines, our_side=ours)
    assert sorted((d.order_no, d.kind) for d in diffs) == [
        ("B", "amount_mismatch"),
        ("C", "status_mismatch"),
        ("GONE", "missing_on_theirs"),
        ("LATE", "status_mismatch"),
        ("STRANGER", "missing_on_our_side"),
    ]
    assert matched == 4  # A, D, E, YDAY
    c = next(d for d in diffs if d.order_no == "C")
    assert (c.our_status, c.their_status) == ("succeeded", "returned")


def test_a_payout_we_settled_just_after_midnight_may_sit_on_yesterdays_statement():
    just_after = dt.datetime(2026, 3, 2, 0, 0, 20, tzinfo=timezone.get_current_timezone())
    ours = Ours(day=[OurPayout("EDGE", 1000, "succeeded", just_after)])
    diffs, _ = statement_compare(channel_code="bd", date=DAY, lines=[], our_side=ours, previous_day=[line("EDGE")])
    assert diffs == []
    diffs, _ = statement_compare(channel_code="bd", date=DAY, lines=[], our_side=ours, previous_day=[])
    assert [d.kind for d in diffs] == ["missing_on_theirs"]
