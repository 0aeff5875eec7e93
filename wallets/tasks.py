from __future__ import annotations

from celery import shared_task

from accounts.models import Merchant

from .services import release_due


@shared_task(name="wallets.release_due")
def release_due_task() -> int:
    reserves = dict(Merchant.objects.filter(reserve_required__gt=0).values_list("pk", "reserve_required"))
    return release_due(reserve_for=reserves)
