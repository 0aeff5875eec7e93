"""Thin Celery tasks: ids in, services do the work, early exit when the state already moved."""

from __future__ import annotations

import datetime as dt

from celery import shared_task

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
    """Every published statement not imported yet (yesterday's from RECONCILE_HOUR, and any earlier day of the
    catch-up window a download or a lost message missed); with ``date``, that day's statements again."""
    from .reconciliation import reconcile_channels as run
    from .reconciliation import reconcile_due

    if date:
        return len(run(date=dt.date.fromisoformat(date)))
    return len(reconcile_due())


@shared_task(name="withdrawals.compliance_daily")
def compliance_daily() -> dict[str, object]:
    from .compliance_jobs import compliance_daily as run

    return run()
