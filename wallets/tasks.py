from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from accounts.models import Merchant

from .services import release_due


@shared_task(name="wallets.release_due")
def release_due_task() -> dict[str, int]:
    """Beat, every minute: pending sales whose freeze window has passed become available."""
    reserves = dict(Merchant.objects.filter(reserve_required__gt=0).values_list("pk", "reserve_required"))
    return asdict(release_due(reserve_for=reserves))
