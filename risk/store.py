"""The risk engine's StateStore over the RiskState table (PostgreSQL in production, SQLite in the demo)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from .models import RiskState


class DbStore:
    """Rows are read as they are and written back with one upsert each. Callers run inside the withdrawal's
    transaction, so a decision and the state it learnt from commit or roll back together."""

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return RiskState.objects.filter(kind=kind, key=key).values_list("data", flat=True).first()

    def get_many(self, kind: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        return dict(RiskState.objects.filter(kind=kind, key__in=wanted).values_list("key", "data"))

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        RiskState.objects.bulk_create(
            [RiskState(kind=kind, key=key, data=value, updated_at=timezone.now())],
            update_conflicts=True,
            unique_fields=["kind", "key"],
            update_fields=["data", "updated_at"],
        )
