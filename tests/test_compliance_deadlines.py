"""Filing deadlines in working days (issue 13): large-value reports 5 working days after the transaction,
suspicious ones per SUSPICIOUS_REPORT_DUE_WORKING_DAYS after the grounds; due-today and overdue lists, the admin
filter and an operations alert for each overdue report. Dates pinned by value on the 2026 calendar."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine

from channels.models import ChannelAlert
from compliance.selectors import reports_due_today, reports_overdue
from compliance.services import report_deadline, report_draft
from operations.compliance_jobs import compliance_deadlines
from tests.staff import staff_client, staff_user

pytestmark = pytest.mark.django_db(transaction=True)

SH = ZoneInfo("Asia/Shanghai")


def at(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def end_of(y, m, d):
    return datetime(y, m, d, 23, 59, 59, tzinfo=SH)


@pytest.mark.parametrize(
    ("occurred", "due"),
    [
        # Thu 12 Feb: Fri 13, Sat 14 (调休 works), 春节 15–23, Tue 24, Wed 25, Thu 26.
        (at(2026, 2, 12), end_of(2026, 2, 26)),
        # Mon 28 Sep: Tue 29, Wed 30, 国庆 1–7 Oct, Thu 8, Fri 9, Sat 10 (调休 works).
        (at(2026, 9, 28), end_of(2026, 10, 10)),
        # On a holiday: counting starts at the next working day (8, 9, 10, 12, 13).
        (at(2026, 10, 3), end_of(2026, 10, 13)),
        # 20:00 UTC on the 12th is 04:00 on the 13th in Shanghai: the Chinese day counts (14, 24, 25, 26, 27).
        (datetime(2026, 2, 12, 20, 0, tzinfo=ZoneInfo("UTC")), end_of(2026, 2, 27)),
        # A plain week: Mon 9 Mar + 5 = Mon 16 Mar (the weekend does not count).
        (at(2026, 3, 9), end_of(2026, 3, 16)),
    ],
)
def test_large_value_due_five_working_days_after_the_transaction(workday_calendar, occurred, due):
    assert report_deadline(kind="large_value", occurred_at=occurred) == due


def test_suspicious_due_per_setting_after_the_grounds(workday_calendar, settings):
    occurred = at(2026, 9, 1)  # the transaction's day does not matter: the day the grounds were established does
    assert settings.SUSPICIOUS_REPORT_DUE_WORKING_DAYS == 1
    assert report_deadline(kind="suspicious", occurred_at=occurred, established_at=at(2026, 9, 30)) == end_of(
        2026, 10, 8
    )
    settings.SUSPICIOUS_REPORT_DUE_WORKING_DAYS = 0  # the same day, or the next working day after a rest day
    assert report_deadline(kind="suspicious", occurred_at=occurred, established_at=at(2026, 9, 30)) == end_of(
        2026, 9, 30
    )
    assert report_deadline(kind="suspicious", occurred_at=occurred, established_at=at(2026, 10, 3)) == end_of(
        2026, 10, 8
    )
    settings.SUSPICIOUS_REPORT_DUE_WORKING_DAYS = 3
    with time_machine.travel(at(2026, 2, 13), tick=False):  # default: established now (Fri 13 Feb)
        assert report_deadline(kind="suspicious", occurred_at=occurred) == end_of(2026, 2, 25)


def _draft(ref, kind, occurred):
    return report_draft(kind=kind, subject_ref=ref, merchant_id=1, merchant_name="Alice 游戏点卡", amount=5_000_000,
                        occurred_at=occurred, grounds=["test"])  # fmt: skip


def test_due_today_overdue_and_one_alert_each(workday_calendar):
    with time_machine.travel(at(2026, 9, 28, 12), tick=False):
        late = _draft("withdrawal:1", "large_value", at(2026, 9, 28))  # due Sat 10 Oct
        later = _draft("withdrawal:2", "large_value", at(2026, 9, 29))  # due Mon 12 Oct
        filed = _draft("withdrawal:3", "large_value", at(2026, 9, 28))
    filed.status = "filed"
    filed.save(update_fields=["status"])
    assert late.deadline == end_of(2026, 10, 10) and later.deadline == end_of(2026, 10, 12)

    on_the_day = at(2026, 10, 10, 9)
    assert list(reports_due_today(on_the_day)) == [late]
    assert list(reports_overdue(on_the_day)) == []
    assert compliance_deadlines(now=on_the_day) == {"due_today": 1, "overdue": 0, "alerted": 0}

    next_day = at(2026, 10, 11, 0, 1)
    assert list(reports_overdue(next_day)) == [late]
    assert compliance_deadlines(now=next_day) == {"due_today": 0, "overdue": 1, "alerted": 1}
    assert compliance_deadlines(now=next_day) == {"due_today": 0, "overdue": 1, "alerted": 0}  # once
    alert = ChannelAlert.objects.get()
    assert (alert.kind, alert.severity, alert.subject) == ("compliance_overdue", "critical", f"report:{late.pk}")
    assert "¥50,000.00" in alert.title

    monday = at(2026, 10, 12, 9)
    assert compliance_deadlines(now=monday) == {"due_today": 1, "overdue": 1, "alerted": 0}


def test_admin_deadline_filter(workday_calendar):
    with time_machine.travel(at(2026, 9, 28, 12), tick=False):
        _draft("withdrawal:11", "large_value", at(2026, 9, 28))
        _draft("withdrawal:12", "large_value", at(2026, 9, 29))
    client = staff_client(staff_user("olivia", "compliance_officer"))
    with time_machine.travel(at(2026, 10, 12, 9), tick=True):
        overdue = client.get("/admin/compliance/transactionreport/?due=overdue").content.decode()
        today = client.get("/admin/compliance/transactionreport/?due=today").content.decode()
    assert "withdrawal:11" in overdue and "withdrawal:12" not in overdue
    assert "withdrawal:12" in today and "withdrawal:11" not in today
