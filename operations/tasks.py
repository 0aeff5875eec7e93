"""Thin Celery tasks for whole-platform jobs."""

from __future__ import annotations

from celery import shared_task

from .compliance_jobs import compliance_daily as compliance_daily_run
from .compliance_jobs import compliance_deadlines as compliance_deadlines_run


# The name it had when it lived in withdrawals: beat entries and queued messages keep working.
@shared_task(name="withdrawals.compliance_daily")
def compliance_daily() -> dict[str, object]:
    return compliance_daily_run()


@shared_task(name="operations.compliance_deadlines")
def compliance_deadlines() -> dict[str, int]:
    return compliance_deadlines_run()
