"""Thin Celery tasks for accounts."""

from __future__ import annotations

from celery import shared_task

from .services import merchant_tiers_refresh_all


@shared_task(name="accounts.tiers_refresh")
def tiers_refresh() -> dict[str, int]:
    """Tier upgrades that no event triggers (account age passing a threshold), and any downgrade."""
    return merchant_tiers_refresh_all()
