"""Working days on the Chinese calendar: Monday to Friday, less public holidays, plus make-up working days
(调休). What settlement and compliance deadlines count in. Pure reads of ``CalendarDay``; one query per call."""

from __future__ import annotations

from datetime import date, timedelta

from .models import CalendarDay

# How far a single query looks ahead: the longest run of consecutive rest days in a year is 9 (春节 2026), so
# n working days never take more than a few times n calendar days.
_WINDOW_PER_DAY = 3
_WINDOW_EXTRA = 31


def _overrides(start: date, end: date) -> dict[date, bool]:
    """date → works that day, for the stored exceptions in [start, end]."""
    rows = CalendarDay.objects.filter(date__range=(min(start, end), max(start, end))).values_list("date", "kind")
    return {day: kind == CalendarDay.Kind.MAKEUP_WORKDAY for day, kind in rows}


def _works(day: date, overrides: dict[date, bool]) -> bool:
    return overrides.get(day, day.weekday() < 5)


def is_working_day(day: date) -> bool:
    """Whether ``day`` is a working day (a weekday that is no holiday, or a make-up working day)."""
    return _works(day, _overrides(day, day))


def add_working_days(day: date, n: int) -> date:
    """The date ``n`` working days after ``day`` (before it for a negative ``n``); ``day`` itself never counts,
    so from a Friday, 1 working day is the next Monday, and from a holiday the count starts at the next
    working day. ``n == 0`` returns ``day``."""
    if n == 0:
        return day
    step = 1 if n > 0 else -1
    remaining = abs(n)
    span = remaining * _WINDOW_PER_DAY + _WINDOW_EXTRA
    current = day
    while True:
        overrides = _overrides(current, current + timedelta(days=step * span))
        for _ in range(span):
            current += timedelta(days=step)
            if _works(current, overrides):
                remaining -= 1
                if remaining == 0:
                    return current


def next_working_day(day: date, *, include_today: bool = False) -> date:
    """The first working day after ``day`` (``day`` itself when ``include_today`` and it is one)."""
    if include_today and is_working_day(day):
        return day
    return add_working_days(day, 1)


def previous_working_day(day: date) -> date:
    return add_working_days(day, -1)


def working_days_between(start: date, end: date) -> int:
    """Working days in (start, end]: how many working days after ``start`` the date ``end`` is (0 when ``end``
    is not after ``start``)."""
    if end <= start:
        return 0
    overrides = _overrides(start, end)
    return sum(_works(start + timedelta(days=i), overrides) for i in range(1, (end - start).days + 1))


def years_loaded() -> list[int]:
    """The years the calendar has data for (a year with none counts weekends only: add its file)."""
    return sorted({d.year for d in CalendarDay.objects.dates("date", "year")})
