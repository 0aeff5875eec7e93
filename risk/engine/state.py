"""Where the risk engine keeps what it has learnt from past events.

State is a set of small JSON-serialisable dicts addressed by ``(kind, key)``: one row per merchant, device,
IP, /24 network, card, buyer, phone, identity number and withdrawal. The engine reads a handful of rows per
event and writes back the ones it changed, so the same code runs over :class:`InMemoryStore` (replay, tuning,
tests) and over database rows (the live platform implements :class:`StateStore` on a table keyed by
``(kind, key)``).

Every row is bounded: histories are ring buffers and per-entity sets are capped maps that forget the least
recently seen member, so a decision never scans history however long the platform runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

Row = dict[str, Any]

# Row kinds.
MERCHANT = "merchant"
DEVICE = "device"
IP = "ip"
NET24 = "ip24"
CARD = "card"
BUYER = "buyer"
PHONE = "phone"
ID_NUMBER = "id_number"
WITHDRAWAL = "withdrawal"
PLATFORM = "platform"  # platform-wide hourly counters (one row; a live store may shard it)
KINDS = (MERCHANT, DEVICE, IP, NET24, CARD, BUYER, PHONE, ID_NUMBER, WITHDRAWAL, PLATFORM)


@runtime_checkable
class StateStore(Protocol):
    """Key-value storage of JSON-serialisable rows.

    ``get`` returns a row the caller may mutate; changes are only durable once passed to ``put``.
    """

    def get(self, kind: str, key: str) -> Row | None: ...

    def put(self, kind: str, key: str, value: Row) -> None: ...

    def get_many(self, kind: str, keys: Iterable[str]) -> dict[str, Row]: ...


class InMemoryStore:
    """A dict-backed :class:`StateStore`.

    With ``serialise=True`` rows are stored as JSON text and decoded on every read, as a database-backed store
    would; tests use it to prove the engine keeps nothing outside the store.
    """

    def __init__(self, *, serialise: bool = False) -> None:
        self._serialise = serialise
        self._rows: dict[tuple[str, str], Any] = {}

    def get(self, kind: str, key: str) -> Row | None:
        value = self._rows.get((kind, key))
        if value is None or not self._serialise:
            return value
        return json.loads(value)

    def put(self, kind: str, key: str, value: Row) -> None:
        self._rows[(kind, key)] = json.dumps(value, separators=(",", ":")) if self._serialise else value

    def get_many(self, kind: str, keys: Iterable[str]) -> dict[str, Row]:
        found = {}
        for key in keys:
            row = self.get(kind, key)
            if row is not None:
                found[key] = row
        return found

    def __len__(self) -> int:
        return len(self._rows)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self._rows if k == kind)


class UnitOfWork:
    """Rows read and changed while handling one event; ``commit`` writes back only the changed ones."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._rows: dict[tuple[str, str], Row | None] = {}
        self._dirty: set[tuple[str, str]] = set()

    def get(self, kind: str, key: str | None) -> Row | None:
        if key is None:
            return None
        address = (kind, key)
        if address not in self._rows:
            self._rows[address] = self.store.get(kind, key)
        return self._rows[address]

    def row(self, kind: str, key: str) -> Row:
        """The row, created empty if absent (and then marked changed)."""
        found = self.get(kind, key)
        if found is None:
            found = {}
            self._rows[(kind, key)] = found
            self._dirty.add((kind, key))
        return found

    def changed(self, kind: str, key: str) -> None:
        self._dirty.add((kind, key))

    def commit(self) -> None:
        for kind, key in sorted(self._dirty):
            row = self._rows[(kind, key)]
            if row is not None:
                self.store.put(kind, key, row)
        self._dirty.clear()


# --- bounded structures ----------------------------------------------------------------------------------


def ring_append(items: list, item: Any, cap: int) -> None:
    """Append, dropping the oldest entries beyond cap."""
    items.append(item)
    if len(items) > cap:
        del items[: len(items) - cap]


def touch(members: dict[str, list], key: str, ts: int, cap: int) -> bool:
    """Record that ``key`` was seen at ``ts`` in a capped ``{key: [first_ts, last_ts]}`` map.

    Returns True if the key was new. Beyond ``cap`` the least recently seen member is forgotten.
    """
    seen = members.get(key)
    if seen is not None:
        if ts > seen[1]:
            seen[1] = ts
        return False
    members[key] = [ts, ts]
    if len(members) > cap:
        stalest = min(members, key=lambda k: members[k][1])
        del members[stalest]
    return True


def add_capped(items: list, item: Any, cap: int) -> bool:
    """Add to a capped list used as a set; returns True if it was new (the oldest is dropped beyond cap)."""
    if item in items:
        return False
    ring_append(items, item, cap)
    return True
