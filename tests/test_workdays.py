"""The working-day calendar: weekends rest, public holidays rest, make-up working days (调休) work. Dates pinned
by value from the State Council's 2026 notice (workdays/data/2026.json)."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.management import call_command

from workdays.loader import load, year_days, year_files
from workdays.models import CalendarDay
from workdays.selectors import (
    add_working_days,
    is_working_day,
    next_working_day,
    previous_working_day,
    working_days_between,
    years_loaded,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_year_files_are_what_the_notice_says():
    files = {p.stem: year_days(p) for p in year_files()}
    assert set(files) >= {"2026", "2027"}
    days_2026 = files["2026"]
    holidays = [d.date for d in days_2026 if d.kind == "holiday"]
    makeups = [d.date for d in days_2026 if d.kind == "makeup_workday"]
    assert len(holidays) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert makeups == [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
                       date(2026, 9, 20), date(2026, 10, 10)]  # fmt: skip
    assert not any(d.provisional for d in days_2026)
    assert all(d.provisional for d in files["2027"])  # not yet published: statutory days only


def test_weekdays_weekends_holidays_and_makeup_days(workday_calendar):
    assert is_working_day(date(2026, 2, 13))  # Friday
    assert is_working_day(date(2026, 2, 14))  # Saturday, 春节调休: works
    assert not is_working_day(date(2026, 2, 16))  # Monday in 春节
    assert not is_working_day(date(2026, 2, 23))  # Monday, last day of 春节
    assert is_working_day(date(2026, 2, 24))
    assert not is_working_day(date(2026, 3, 7)) and not is_working_day(date(2026, 3, 8))  # plain weekend
    assert is_working_day(date(2026, 9, 20))  # Sunday, 国庆节调休
    assert not is_working_day(date(2026, 10, 1))


def test_add_working_days_across_a_holiday_and_a_makeup_day(workday_calendar):
    # Thursday 12 Feb + 5: Fri 13, Sat 14 (调休), 15–23 春节, Tue 24, Wed 25, Thu 26.
    assert add_working_days(date(2026, 2, 12), 5) == date(2026, 2, 26)
    # Monday 28 Sep + 5: Tue 29, Wed 30, 1–7 Oct 国庆, Thu 8, Fri 9, Sat 10 (调休).
    assert add_working_days(date(2026, 9, 28), 5) == date(2026, 10, 10)
    assert add_working_days(date(2026, 3, 6), 1) == date(2026, 3, 9)  # Friday + 1: Monday
    assert add_working_days(date(2026, 3, 6), 0) == date(2026, 3, 6)
    assert add_working_days(date(2026, 2, 24), -1) == date(2026, 2, 14)  # back over 春节 to the 调休 Saturday
    assert previous_working_day(date(2026, 10, 8)) == date(2026, 9, 30)
    assert working_days_between(date(2026, 2, 12), date(2026, 2, 26)) == 5
    assert working_days_between(date(2026, 2, 26), date(2026, 2, 12)) == 0


def test_next_working_day_and_the_year_boundary(workday_calendar):
    assert next_working_day(date(2026, 10, 1)) == date(2026, 10, 8)
    assert next_working_day(date(2026, 10, 8), include_today=True) == date(2026, 10, 8)
    assert next_working_day(date(2026, 10, 8)) == date(2026, 10, 9)
    # Thursday 31 Dec 2026 + 1: 1 Jan 2027 is 元旦 (provisional data), then the weekend: Monday 4 Jan.
    assert next_working_day(date(2026, 12, 31)) == date(2027, 1, 4)
    assert years_loaded() == [2026, 2027]


def test_a_day_edited_in_the_admin_counts(workday_calendar):
    CalendarDay.objects.create(date=date(2026, 3, 10), kind=CalendarDay.Kind.HOLIDAY, name="test")
    assert not is_working_day(date(2026, 3, 10))
    assert add_working_days(date(2026, 3, 9), 1) == date(2026, 3, 11)


def test_loading_is_idempotent_and_replaces_a_year(transactional_db, tmp_path):
    CalendarDay.objects.all().delete()
    first = load(CalendarDay)
    assert first["created"] == CalendarDay.objects.count() > 0
    assert load(CalendarDay) == {"created": 0, "updated": 0, "removed": 0}
    (tmp_path / "2027.json").write_text(
        '{"year": 2027, "status": "published", "holidays": [{"name": "元旦", "from": "2027-01-01", "to": '
        '"2027-01-03"}], "makeup_working_days": []}',
        encoding="utf-8",
    )
    counts = load(CalendarDay, [tmp_path / "2027.json"])
    assert counts["created"] == 2 and counts["updated"] == 1 and counts["removed"] > 0
    assert not CalendarDay.objects.filter(date__year=2027, provisional=True).exists()
    call_command("workdays_load")
    assert CalendarDay.objects.filter(date__year=2027, provisional=True).exists()


def test_a_bad_file_is_refused(tmp_path):
    bad = tmp_path / "2026.json"
    bad.write_text('{"year": 2026, "holidays": [], "makeup_working_days": [{"name": "x", "date": "2026-03-04"}]}')
    with pytest.raises(ValueError, match="not a Saturday or Sunday"):
        year_days(bad)
