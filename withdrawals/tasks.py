"""Thin Celery tasks: ids in, services do the work, early exit when the state already moved."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from . import payouts


@shared_task(name="withdrawals.payout", acks_late=True)
def payout_run(withdrawal_id: int, seq: int | None = None) -> None:
    payouts.payout_run(withdrawal_id=withdrawal_id, seq=seq)


@shared_task(name="withdrawals.query", acks_late=True)
def payout_query(withdrawal_id: int, seq: int | None = None) -> None:
    payouts.payout_query_run(withdrawal_id=withdrawal_id, seq=seq)


@shared_task(name="withdrawals.sweep")
def sweep() -> dict[str, int]:
    return payouts.sweep()


@shared_task(name="withdrawals.reconcile_channels")
def reconcile_channels(date: str = "") -> int:
    """Yesterday's statements (or ``date``), every statement-publishing channel."""
    from .reconciliation import reconcile_channels as run

    day = dt.date.fromisoformat(date) if date else timezone.localdate() - dt.timedelta(days=1)
    return len(run(date=day))


@shared_task(name="withdrawals.compliance_daily")
def compliance_daily() -> dict[str, object]:
    from .compliance_jobs import compliance_daily as run

    return run()
