"""Thin Celery tasks: ids in, webhooks.services does the work."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name=services.DELIVER_TASK, acks_late=True)
def deliver(delivery_id: int) -> str:
    """One attempt at one delivery (nothing when it is not due or another worker holds it)."""
    return services.delivery_attempt(delivery_id=delivery_id)


@shared_task(name="webhooks.deliver_due")
def deliver_due() -> int:
    """The beat job: a delivery task for every pending delivery that is due — a retry whose time has come, a
    delivery whose after-commit message was lost, or one whose worker died holding the claim."""
    due = services.deliveries_due()
    services.deliveries_enqueue(due)
    return len(due)
