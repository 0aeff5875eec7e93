"""Thin Celery tasks for channel housekeeping."""

from __future__ import annotations

from celery import shared_task

from .health import channel_outcomes_prune


@shared_task(name="channels.prune_outcomes")
def prune_outcomes() -> int:
    return channel_outcomes_prune()
