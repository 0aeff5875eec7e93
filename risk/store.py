"""The risk engine's StateStore over the RiskState table (PostgreSQL in production, SQLite in the demo)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q
from django.utils import timezone

from .models import RiskState


class DbStore:
    """Rows are read as they are; writes are buffered and flushed as one upsert per event (``flush``), inside
    the caller's transaction, so a decision and the state it learnt from commit or roll back together."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        # Rows read while handling the current event (so a caller's pre-read costs no second query).
        self._read: dict[tuple[str, str], dict[str, Any] | None] = {}

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        if (kind, key) in self._pending:
            return self._pending[(kind, key)]
        if (kind, key) not in self._read:
            self._read[(kind, key)] = (
                RiskState.objects.filter(kind=kind, key=key).values_list("data", flat=True).first()
            )
        return self._read[(kind, key)]

    def prefetch(self, addresses: Iterable[tuple[str, str | None]]) -> None:
        """Read the rows an event is about to need in one query (missing rows are remembered as missing)."""
        wanted = {
            (k, key) for k, key in addresses if key and (k, key) not in self._pending and (k, key) not in self._read
        }
        if not wanted:
            return
        match = Q()
        for kind, key in wanted:
            match |= Q(kind=kind, key=key)
        found = {(k, key): data for k, key, data in RiskState.objects.filter(match).values_list("kind", "key", "data")}
        for address in wanted:
            self._read[address] = found.get(address)

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
        self._read.clear()
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
        self._read.clear()
