"""The risk engine's StateStore over the RiskState table (PostgreSQL in production, SQLite in the demo)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from .models import RiskState


class DbStore:
    """Rows are read as they are; writes are buffered and flushed as one upsert per event (``flush``), inside
    the caller's transaction, so a decision and the state it learnt from commit or roll back together."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        if (kind, key) in self._pending:
            return self._pending[(kind, key)]
        return RiskState.objects.filter(kind=kind, key=key).values_list("data", flat=True).first()

    def get_many(self, kind: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(dict.fromkeys(keys))
        found = {k: self._pending[(kind, k)] for k in wanted if (kind, k) in self._pending}
        rest = [k for k in wanted if k not in found]
        if rest:
            found.update(RiskState.objects.filter(kind=kind, key__in=rest).values_list("key", "data"))
        return found

    def put(self, kind: str, key: str, value: dict[str, Any]) -> None:
        self._pending[(kind, key)] = value

    def flush(self) -> None:
        if not self._pending:
            return
        now = timezone.now()
        rows = [RiskState(kind=k, key=key, data=v, updated_at=now) for (k, key), v in sorted(self._pending.items())]
        self._pending.clear()
        RiskState.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["kind", "key"], update_fields=["data", "updated_at"]
        )

    def discard(self) -> None:
        self._pending.clear()
