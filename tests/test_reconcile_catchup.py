"""The periodic statement reconciliation over days with a moving clock: a statement whose download failed, or
whose run never happened (a lost broker message), is fetched again by a later hourly run instead of leaving that
day unreconciled for good; one still missing a day after publication raises one operations alert."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from channels.models import Channel, ChannelAlert, StatementImport
from withdrawals import tasks

pytestmark = pytest.mark.django_db

TZ = timezone.get_fixed_timezone(8 * 60)


class FlakyStatements:
    """Stands in for the channel download: records every fetch; a (code, day) in ``failing`` raises."""

    def __init__(self) -> None:
        self.failing: set[tuple[str, dt.date]] = set()
        self.fetched: list[tuple[str, dt.date]] = []

    def __call__(self, *, channel_code: str, date: dt.date, our_side: Any) -> StatementImport:
        self.fetched.append((channel_code, date))
        if (channel_code, date) in self.failing:
            raise TimeoutError(f"{channel_code} statement download timed out")
        return StatementImport.objects.create(channel_code=channel_code, date=date, imported_at=timezone.now())


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FlakyStatements:
    settings.RECONCILE_HOUR = 3
    settings.RECONCILE_CATCHUP_DAYS = 7
    Channel.objects.all().delete()
    for code, adapter in (("bankdirect", Channel.Adapter.BANKDIRECT), ("alipay", Channel.Adapter.ALIPAY)):
        Channel.objects.create(code=code, name=code, adapter=adapter, supported_account_kinds=["bank_card"])
    Channel.objects.create(code="sandbox", name="sandbox", adapter=Channel.Adapter.SANDBOX)
    fake = FlakyStatements()
    monkeypatch.setattr("withdrawals.reconciliation.statement_import", fake)
    return fake


def _at(day: int, hour: int, minute: int = 15) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=TZ)


def test_hourly_runs_import_each_published_statement_once_and_catch_up_failures(statements: FlakyStatements) -> None:
    # Before the platform has any statement the first run takes the whole catch-up window (7 days, 2 channels).
    with time_machine.travel(_at(10, 3), tick=False):
        assert tasks.reconcile_channels() == 14
    assert sorted({d for _, d in statements.fetched}) == [dt.date(2026, 3, d) for d in range(3, 10)]
    assert all(code != "sandbox" for code, _ in statements.fetched)
    statements.fetched.clear()

    # 10 March: alipay's statement of the 10th times out at 03:15 and 04:15; bankdirect's arrives at 03:15.
    statements.failing = {("alipay", dt.date(2026, 3, 10))}
    for day, hour in ((10, 4), (10, 23), (11, 0), (11, 2)):  # nothing new is published before 03:00 on the 11th
        with time_machine.travel(_at(day, hour), tick=False):
            assert tasks.reconcile_channels() == 0
    assert statements.fetched == []
    with time_machine.travel(_at(11, 3), tick=False):
        assert tasks.reconcile_channels() == 1
    with time_machine.travel(_at(11, 4), tick=False):
        assert tasks.reconcile_channels() == 0
    assert statements.fetched == [
        ("alipay", dt.date(2026, 3, 10)),
        ("bankdirect", dt.date(2026, 3, 10)),
        ("alipay", dt.date(2026, 3, 10)),
    ]
    assert not ChannelAlert.objects.exists()  # a day after publication it is still only being retried

    # The 12th's run at 03:15 is lost by the broker: no run at all. At 04:15 alipay answers again: both days.
    statements.failing = set()
    statements.fetched.clear()
    with time_machine.travel(_at(12, 4), tick=False):
        assert tasks.reconcile_channels() == 3
    assert sorted(statements.fetched) == [
        ("alipay", dt.date(2026, 3, 10)),
        ("alipay", dt.date(2026, 3, 11)),
        ("bankdirect", dt.date(2026, 3, 11)),
    ]
    assert StatementImport.objects.filter(date__gte=dt.date(2026, 3, 3)).count() == 2 * 9
    assert not ChannelAlert.objects.exists()


def test_a_statement_still_missing_two_days_later_raises_one_alert(statements: FlakyStatements) -> None:
    for day in range(3, 10):
        for code in ("bankdirect", "alipay"):
            StatementImport.objects.create(channel_code=code, date=dt.date(2026, 3, day), imported_at=timezone.now())
    statements.failing = {("bankdirect", dt.date(2026, 3, 10))}
    for day, hour in ((11, 3), (11, 12), (12, 3), (12, 4), (12, 5)):
        with time_machine.travel(_at(day, hour), tick=False):
            tasks.reconcile_channels()
    alerts = ChannelAlert.objects.filter(kind=ChannelAlert.Kind.RECONCILIATION)
    assert [(a.channel_code, a.subject) for a in alerts] == [("bankdirect", "2026-03-10")]
    assert statements.fetched.count(("bankdirect", dt.date(2026, 3, 10))) == 5

    # Past the catch-up window the day is no longer fetched (operations run `reconcile_channels --date`).
    statements.fetched.clear()
    with time_machine.travel(_at(18, 5), tick=False):
        tasks.reconcile_channels()
    assert ("bankdirect", dt.date(2026, 3, 10)) not in statements.fetched


def test_an_explicit_date_imports_that_day_again(statements: FlakyStatements) -> None:
    StatementImport.objects.create(channel_code="alipay", date=dt.date(2026, 3, 9), imported_at=timezone.now())
    with time_machine.travel(_at(11, 9), tick=False):
        tasks.reconcile_channels(date="2026-03-09")
    assert sorted(statements.fetched) == [("alipay", dt.date(2026, 3, 9)), ("bankdirect", dt.date(2026, 3, 9))]
