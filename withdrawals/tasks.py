"""Thin Celery tasks: ids in, services do the work, early exit when the state already moved."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from . import payouts, reconciliation, settlement
from .dispatch import PAYOUT_TASK, QUERY_TASK


@shared_task(name=PAYOUT_TASK, acks_late=True)
def payout_run(withdrawal_id: int, seq: int | None = None) -> None:
    payouts.payout_run(withdrawal_id=withdrawal_id, seq=seq)


@shared_task(name=QUERY_TASK, acks_late=True)
def payout_query(withdrawal_id: int, seq: int | None = None) -> None:
    payouts.payout_query_run(withdrawal_id=withdrawal_id, seq=seq)


@shared_task(name="withdrawals.sweep")
def sweep() -> dict[str, int]:
    return payouts.sweep()


@shared_task(name="withdrawals.reconcile_channels")
def reconcile_channels(date: str = "") -> int:
    """Every published statement not imported yet (yesterday's from RECONCILE_HOUR, and any earlier day of the
    catch-up window a download or a lost message missed); with ``date``, that day's statements again."""
    if date:
        return len(reconciliation.reconcile_channels(date=dt.date.fromisoformat(date)))
    return len(reconciliation.reconcile_due())


@shared_task(name="withdrawals.settlement_run_due")
def settlement_run_due() -> dict[str, int]:
    """Automatic settlement: every rule whose period is due (each period settles once, whatever reruns)."""
    return settlement.settlement_run_due()
