"""Thin Celery tasks for risk."""

from __future__ import annotations

from celery import shared_task

from .learning import risk_learning_loop_run


@shared_task(name="risk.learning_loop")
def learning_loop() -> dict:
    run = risk_learning_loop_run()
    return {k: v for k, v in run.summary.items() if k != "shared"}
