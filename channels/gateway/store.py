"""The gateway's own book: payouts it received, callbacks it sent, statement plants, fault scripts.

Plain ``sqlite3`` (no Django ORM: the gateway stands in for someone else's system). One connection guarded by
a lock is plenty for a sandbox; ``UNIQUE(channel, order_no)`` is what makes a resubmit under the same order
number land on the existing payout instead of creating a second one.

Durability: the book must survive a ``kill -9`` (and a power cut) as well as the provider it stands in for.
Every decision of the engine is one ``transaction()`` (BEGIN IMMEDIATE … COMMIT): the payout row in its state,
its callback rows and the attempt counter commit together or not at all. The journal is WAL with
``synchronous=FULL``: WAL alone already survives a killed process (a committed transaction is in the WAL file
before COMMIT returns), but with NORMAL the last commits may roll back on a power cut or kernel crash, and the
gateway answers "paid" right after COMMIT, so a lost commit would be a payout the provider told us about and
then forgot. FULL fsyncs the WAL at every commit; a sandbox makes a few hundred decisions a minute at most.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS payouts (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    order_no TEXT NOT NULL,
    reference TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    account_kind TEXT NOT NULL,
    account_number TEXT NOT NULL,
    holder_name TEXT NOT NULL,
    bank_code TEXT NOT NULL DEFAULT '',
    notify_url TEXT NOT NULL DEFAULT '',
    behaviour TEXT NOT NULL,
    status TEXT NOT NULL,
    provider_code TEXT NOT NULL DEFAULT '',
    submissions INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    due_at REAL,
    due_status TEXT NOT NULL DEFAULT '',
    due_code TEXT NOT NULL DEFAULT '',
    return_at REAL,
    UNIQUE (channel, order_no)
);
CREATE TABLE IF NOT EXISTS attempts (
    channel TEXT NOT NULL,
    order_no TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (channel, order_no)
);
CREATE TABLE IF NOT EXISTS callbacks (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    order_no TEXT NOT NULL,
    notify_id TEXT NOT NULL,
    status TEXT NOT NULL,
    url TEXT NOT NULL,
    headers TEXT NOT NULL,
    body BLOB NOT NULL,
    fault TEXT NOT NULL DEFAULT '',
    deliveries INTEGER NOT NULL DEFAULT 0,
    delivery_log TEXT NOT NULL DEFAULT '[]',
    created_at REAL NOT NULL,
    due_at REAL
);
CREATE TABLE IF NOT EXISTS plants (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    date TEXT NOT NULL,
    kind TEXT NOT NULL,
    order_no TEXT NOT NULL DEFAULT '',
    amount INTEGER,
    status TEXT NOT NULL DEFAULT '',
    reference TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS scripts (
    channel TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
"""


@dataclass
class Payout:
    id: int
    channel: str
    order_no: str
    reference: str
    amount: int
    currency: str
    account_kind: str
    account_number: str
    holder_name: str
    bank_code: str
    notify_url: str
    behaviour: str
    status: str
    provider_code: str
    submissions: int
    created_at: float
    updated_at: float
    due_at: float | None
    due_status: str
    due_code: str
    return_at: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_PAYOUT_COLUMNS = [f.name for f in fields(Payout)]


class Store:
    def __init__(self, path: Path) -> None:
        self.lock = threading.RLock()
        self._depth = 0  # nesting of transaction(); only the outermost one begins and commits
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        columns = {row["name"] for row in self.db.execute("PRAGMA table_info(callbacks)")}
        if "due_at" not in columns:  # a book written before callbacks were resumable
            self.db.execute("ALTER TABLE callbacks ADD COLUMN due_at REAL")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together, or none does (an exception rolls back). Holds the store's lock
        throughout: the connection is shared, so no other thread may read half a decision. Nestable."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self.db.execute("ROLLBACK")
                raise
            self._depth = 0
            self.db.execute("COMMIT")

    def pragma(self, name: str) -> Any:
        with self.lock:
            return self.db.execute(f"PRAGMA {name}").fetchone()[0]

    # --- payouts -------------------------------------------------------------------------------------------
    def payout(self, channel: str, order_no: str) -> Payout | None:
        with self.lock:
            row = self.db.execute(
                "SELECT * FROM payouts WHERE channel = ? AND order_no = ?", (channel, order_no)
            ).fetchone()
        return Payout(**{k: row[k] for k in _PAYOUT_COLUMNS}) if row else None

    def payout_by_id(self, payout_id: int) -> Payout:
        with self.lock:
            row = self.db.execute("SELECT * FROM payouts WHERE id = ?", (payout_id,)).fetchone()
        return Payout(**{k: row[k] for k in _PAYOUT_COLUMNS})

    def payouts(self, channel: str = "", order_no: str = "") -> list[Payout]:
        sql, args = "SELECT * FROM payouts WHERE 1=1", []
        if channel:
            sql += " AND channel = ?"
            args.append(channel)
        if order_no:
            sql += " AND order_no = ?"
            args.append(order_no)
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY id", args).fetchall()
        return [Payout(**{k: r[k] for k in _PAYOUT_COLUMNS}) for r in rows]

    def insert_payout(self, values: dict[str, Any]) -> Payout:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self.lock:
            self.db.execute(f"INSERT INTO payouts ({cols}) VALUES ({marks})", list(values.values()))
            payout = self.payout(values["channel"], values["order_no"])
        assert payout is not None
        return payout

    def update_payout(self, payout_id: int, **values: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        with self.lock:
            self.db.execute(f"UPDATE payouts SET {sets} WHERE id = ?", [*values.values(), payout_id])

    def due_payouts(self, now: float) -> list[Payout]:
        with self.lock:
            rows = self.db.execute(
                "SELECT * FROM payouts WHERE (due_at IS NOT NULL AND due_at <= ?)"
                " OR (return_at IS NOT NULL AND return_at <= ?) ORDER BY id",
                (now, now),
            ).fetchall()
        return [Payout(**{k: r[k] for k in _PAYOUT_COLUMNS}) for r in rows]

    def shift_timers(self, seconds: float) -> None:
        with self.transaction():
            self.db.execute("UPDATE payouts SET due_at = due_at - ? WHERE due_at IS NOT NULL", (seconds,))
            self.db.execute("UPDATE payouts SET return_at = return_at - ? WHERE return_at IS NOT NULL", (seconds,))

    def bump_attempt(self, channel: str, order_no: str) -> int:
        with self.lock:
            self.db.execute(
                "INSERT INTO attempts (channel, order_no, count) VALUES (?, ?, 1)"
                " ON CONFLICT (channel, order_no) DO UPDATE SET count = count + 1",
                (channel, order_no),
            )
            row = self.db.execute(
                "SELECT count FROM attempts WHERE channel = ? AND order_no = ?", (channel, order_no)
            ).fetchone()
        return int(row["count"])

    def attempts(self, channel: str, order_no: str) -> int:
        """How many submits for this order number the gateway has decided on (dropped ones included)."""
        with self.lock:
            row = self.db.execute(
                "SELECT count FROM attempts WHERE channel = ? AND order_no = ?", (channel, order_no)
            ).fetchone()
        return int(row["count"]) if row else 0

    # --- callbacks -----------------------------------------------------------------------------------------
    def insert_callback(self, values: dict[str, Any]) -> int:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self.lock:
            cur = self.db.execute(f"INSERT INTO callbacks ({cols}) VALUES ({marks})", list(values.values()))
        return int(cur.lastrowid or 0)

    def callback(self, callback_id: int) -> dict[str, Any] | None:
        with self.lock:
            row = self.db.execute("SELECT * FROM callbacks WHERE id = ?", (callback_id,)).fetchone()
        return _callback_dict(row) if row else None

    def callbacks(self, channel: str = "", order_no: str = "") -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM callbacks WHERE 1=1", []
        if channel:
            sql += " AND channel = ?"
            args.append(channel)
        if order_no:
            sql += " AND order_no = ?"
            args.append(order_no)
        with self.lock:
            rows = self.db.execute(sql + " ORDER BY id", args).fetchall()
        return [_callback_dict(r) for r in rows]

    def record_delivery(
        self, callback_id: int, entry: dict[str, Any], delivered: bool, retry_at: float | None = None
    ) -> None:
        """One delivery attempt and its answer. Not delivered: ``retry_at`` is when the next attempt is due
        (kept so that a restarted gateway resumes the retries), None when no attempt is left."""
        with self.transaction():
            row = self.db.execute("SELECT delivery_log FROM callbacks WHERE id = ?", (callback_id,)).fetchone()
            if row is None:  # reset while a delivery was in flight
                return
            log = [*json.loads(row["delivery_log"]), entry]
            self.db.execute(
                "UPDATE callbacks SET delivery_log = ?, deliveries = deliveries + ?, due_at = ?,"
                " status = CASE WHEN ? THEN 'delivered' WHEN status = 'pending' AND ? IS NULL THEN 'failed'"
                " ELSE status END WHERE id = ?",
                (json.dumps(log), 1 if delivered else 0, retry_at, delivered, retry_at, callback_id),
            )

    def pending_callbacks(self) -> list[dict[str, Any]]:
        """Callbacks recorded but not yet delivered (nor given up on): what a restarted gateway still owes."""
        with self.lock:
            rows = self.db.execute("SELECT * FROM callbacks WHERE status = 'pending' ORDER BY id").fetchall()
        return [_callback_dict(r) for r in rows]

    def set_callback_status(self, callback_id: int, status: str) -> None:
        with self.lock:
            self.db.execute("UPDATE callbacks SET status = ? WHERE id = ?", (status, callback_id))

    # --- statement plants ----------------------------------------------------------------------------------
    def add_plant(self, values: dict[str, Any]) -> int:
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self.lock:
            cur = self.db.execute(f"INSERT INTO plants ({cols}) VALUES ({marks})", list(values.values()))
        return int(cur.lastrowid or 0)

    def plants(self, channel: str, date: str) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT * FROM plants WHERE channel = ? AND date = ? ORDER BY id", (channel, date)
            ).fetchall()
        return [dict(r) for r in rows]

    def clear_plants(self, channel: str, date: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM plants WHERE channel = ? AND date = ?", (channel, date))

    # --- scripts -------------------------------------------------------------------------------------------
    def script(self, channel: str) -> dict[str, Any]:
        with self.lock:
            row = self.db.execute("SELECT body FROM scripts WHERE channel = ?", (channel,)).fetchone()
        return json.loads(row["body"]) if row else {}

    def save_script(self, channel: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO scripts (channel, body) VALUES (?, ?)"
                " ON CONFLICT (channel) DO UPDATE SET body = excluded.body",
                (channel, json.dumps(body)),
            )

    def reset(self) -> None:
        with self.transaction():
            for table in ("payouts", "attempts", "callbacks", "plants", "scripts"):
                self.db.execute(f"DELETE FROM {table}")


def _callback_dict(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["headers"] = json.loads(data["headers"])
    data["body"] = bytes(data["body"]).decode()
    data["delivery_log"] = json.loads(data["delivery_log"])
    return data
