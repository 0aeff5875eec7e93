"""Reads of the compliance reports: what is due today, what is overdue."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from .models import TransactionReport
from .rules import cited_refs

OPEN_STATUSES = (TransactionReport.Status.DRAFT, TransactionReport.Status.REVIEWED)


def reports_open() -> QuerySet[TransactionReport]:
    """Reports not yet filed or dismissed."""
    return TransactionReport.objects.filter(status__in=OPEN_STATUSES)


def reports_due_on(day: date) -> QuerySet[TransactionReport]:
    """Open reports whose deadline falls on ``day`` (Asia/Shanghai)."""
    tz = timezone.get_current_timezone()
    start = datetime.combine(day, time.min, tzinfo=tz)
    return reports_open().filter(deadline__gte=start, deadline__lt=start + timedelta(days=1))


def reports_due_today(now: datetime | None = None) -> QuerySet[TransactionReport]:
    return reports_due_on(timezone.localdate(now or timezone.now()))


def reports_overdue(now: datetime | None = None) -> QuerySet[TransactionReport]:
    """Open reports past their deadline."""
    return reports_open().filter(deadline__lt=now or timezone.now())


def structuring_cited_refs(*, since: datetime) -> set[str]:
    """Transactions already cited as evidence by a structuring report drafted since ``since``."""
    refs: set[str] = set()
    rows = TransactionReport.objects.filter(subject_ref__startswith="structuring:", created_at__gte=since)
    for grounds in rows.values_list("grounds", flat=True):
        refs |= cited_refs(grounds)
    return refs
