"""What a withdrawal's webhook says: the ``data`` object of every ``withdrawal.<status>`` event.

Stable and documented (docs/webhooks.md): add fields, never rename or remove one. Money in integer fen and as a
decimal string in yuan; times in UTC ISO 8601."""

from __future__ import annotations

from typing import Any

from config.money import fen_decimal
from webhooks.services import utc_iso

from .models import Withdrawal


def withdrawal_webhook_data(w: Withdrawal, *, previous_status: str) -> dict[str, Any]:
    return {
        "object": "withdrawal",
        "id": w.pk,
        "order_no": w.order_no,
        "status": w.status,
        "previous_status": previous_status or None,
        "amount": w.amount,
        "amount_decimal": str(fen_decimal(w.amount)),
        "fee": w.fee,
        "fee_decimal": str(fen_decimal(w.fee)),
        "net_amount": w.net_amount,
        "net_amount_decimal": str(fen_decimal(w.net_amount)),
        "currency": w.currency,
        "failure_code": w.failure_code or None,
        "retry_of": w.retry_of_id,
        "created_at": utc_iso(w.created_at),
        "updated_at": utc_iso(w.updated_at),
    }
