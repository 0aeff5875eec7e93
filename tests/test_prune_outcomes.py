"""The hourly ``channels.prune_outcomes`` beat job over three weeks of a moving clock: each run deletes exactly the
channel outcomes older than CHANNEL_OUTCOME_RETENTION_DAYS and keeps the rest (routing health reads the recent ones)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from channels import tasks
from channels.models import ChannelOutcome

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 3, 1, 0, 30, tzinfo=timezone.get_fixed_timezone(8 * 60))


def test_hourly_pruning_keeps_exactly_the_retention_window(settings: Any) -> None:
    settings.CHANNEL_OUTCOME_RETENTION_DAYS = 14
    ChannelOutcome.objects.bulk_create(
        ChannelOutcome(channel_code="bankdirect", at=START + dt.timedelta(hours=h), kind=ChannelOutcome.Kind.SUCCESS)
        for h in range(0, 24 * 7, 6)  # one outcome every 6 hours for the first week: 28 rows
    )
    deleted = []
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(24 * 22):  # hourly, as beat runs it, for 22 days
            clock.shift(dt.timedelta(hours=1))
            deleted.append(tasks.prune_outcomes())
            cutoff = timezone.now() - dt.timedelta(days=14)
            assert not ChannelOutcome.objects.filter(at__lt=cutoff).exists()
            assert ChannelOutcome.objects.count() == 28 - sum(deleted)
    # Nothing goes before day 14; from then one row per 6 hours; all 28 gone by day 21 and never more than 1 a run.
    assert sum(deleted[: 24 * 14 - 1]) == 0
    assert sum(deleted) == 28 and max(deleted) == 1
