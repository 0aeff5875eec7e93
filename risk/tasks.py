"""Thin Celery tasks for risk."""

from __future__ import annotations

from celery import shared_task
from django.utils.module_loading import autodiscover_modules


@shared_task(name="risk.learning_loop")
def learning_loop() -> dict:
    # The platform registers its source of completed withdrawals in its services module.
    autodiscover_modules("services")
    from .learning import risk_learning_loop_run

    run = risk_learning_loop_run()
    return {k: v for k, v in run.summary.items() if k != "shared"}
