"""What a sale credit's webhook says: the ``data`` object of a ``credit.created`` event.

Stable and documented (docs/webhooks.md): add fields, never rename or remove one. Money in integer fen and as a
decimal string in yuan; times in UTC ISO 8601."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from config.money import fen_decimal
from webhooks.services import utc_iso

from .models import Transfer


def credit_webhook_data(transfer: Transfer, *, order_ref: str, amount: int) -> dict[str, Any]:
    available_at = transfer.available_at or transfer.created_at
    return {
        "object": "credit",
        "id": transfer.pk,
        "order_ref": order_ref,
        "amount": amount,
        "amount_decimal": str(fen_decimal(amount)),
        "currency": settings.PLATFORM_CURRENCY,
        "status": "available" if transfer.released else "pending",
        "available_at": utc_iso(available_at),
        "created_at": utc_iso(transfer.created_at),
    }
