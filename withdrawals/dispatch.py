"""The messages that move a withdrawal on, sent only after the transaction that decided them commits.

A lost message loses nothing: the sweeper (``payouts.sweep``) sends it again. Each message carries the
``action_seq`` it was decided under, so a stale copy does nothing. Every enqueue of the withdrawal core goes
through this module (callers use ``dispatch.enqueue_payout``), so a test that runs the worker by hand replaces
these two functions here and nowhere else.

The Celery tasks are found by name: ``withdrawals.tasks`` runs the payout code, which sends these messages, so
this module cannot import the tasks; ``WithdrawalsConfig.ready()`` imports them, which registers them.
"""

from __future__ import annotations

from django.db import transaction

from config.celery import app

PAYOUT_TASK = "withdrawals.payout"
QUERY_TASK = "withdrawals.query"


def enqueue_payout(withdrawal_id: int, *, seq: int | None = None, countdown: int = 0) -> None:
    """After commit: a payout task for the withdrawal, fenced by its ``action_seq`` (a stale copy does nothing)."""
    task = app.tasks[PAYOUT_TASK]
    transaction.on_commit(lambda: task.apply_async(args=(withdrawal_id, seq), countdown=countdown))


def enqueue_query(withdrawal_id: int, *, seq: int | None = None, countdown: int = 0) -> None:
    """After commit: a query task for a payout at a channel, fenced like ``enqueue_payout``."""
    task = app.tasks[QUERY_TASK]
    transaction.on_commit(lambda: task.apply_async(args=(withdrawal_id, seq), countdown=countdown))
