"""Thin Celery tasks: ids in, services do the work, early exit when the state already moved."""

from __future__ import annotations

from celery import shared_task

from . import payouts


@shared_task(name="withdrawals.payout", acks_late=True)
def payout_run(withdrawal_id: int) -> None:
    payouts.payout_run(withdrawal_id=withdrawal_id)


@shared_task(name="withdrawals.query", acks_late=True)
def payout_query(withdrawal_id: int) -> None:
    payouts.payout_query_run(withdrawal_id=withdrawal_id)


@shared_task(name="withdrawals.sweep")
def sweep() -> dict[str, int]:
    return payouts.sweep()
