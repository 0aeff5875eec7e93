"""The payout lifecycle every protocol shares: decide, record, settle, return, notify.

Protocol modules translate their wire format into a ``Submission`` and an ``Outcome`` back into their wire
format; the engine never sees JSON, forms or signatures. Provider codes come from the protocol's ``Dialect``.

Decision order for a *new* order number (first match wins):
1. maintenance switched on            -> refuse with the dialect's "maintenance" code
2. sandbox_rules behaviour (not SUCCEED) -> that behaviour, exactly (deterministic, beats random faults)
3. ``force_codes`` queue                -> the next forced code (or TIMEOUT / DROP)
4. random ``drop_rate``, ``failure_rates``, ``timeout_rate``
5. paid (or awaiting the payee, for WeChat)

A submit for an order number the gateway already holds never creates a second payout: it answers the
existing payout's current state (or refuses with the dialect's "conflict" code when amount/account differ).

Every decision (a submit, a transition that fell due, a manual one from the control API) is one transaction of
the store: the attempt count, the payout row written once in the state decided (paid at once is inserted as
``succeeded``, never as ``processing`` first), its planned return and its callback rows commit together, and the
callbacks are scheduled only after the commit. A ``kill -9`` at any point leaves the book as it was before the
decision or after it; a restarted gateway resumes what the book still owes (see ``server.Gateway``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from channels.sandbox_rules import Behaviour, behaviour_for

from .crash import CrashPoints
from .script import FORCE_DROP, FORCE_TIMEOUT, Script
from .store import Payout, Store

if TYPE_CHECKING:
    from .notifier import Notifier, OutgoingCallback, Recorded

PROCESSING = "processing"
AWAITING_PAYEE = "awaiting_payee"
SUCCEEDED = "succeeded"
FAILED = "failed"
RETURNED = "returned"
FINAL = {SUCCEEDED, FAILED, RETURNED}

PAYEE_CONFIRM_WINDOW = 24 * 3600
CST = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")


@dataclass(frozen=True)
class Dialect:
    """How one protocol names things. ``codes`` maps the engine's events to the protocol's provider codes."""

    channel: str
    codes: dict[str, str]  # busy, maintenance, conflict, invalid_account, account_frozen, name_mismatch,
    #                        returned, unclaimed
    fail_codes: frozenset[str]  # provider codes that create a *failed payout*; any other code refuses the request
    reference_prefix: str
    awaits_payee: bool = False


@dataclass(frozen=True)
class Submission:
    order_no: str
    amount: int
    currency: str
    account_kind: str
    account_number: str
    holder_name: str
    bank_code: str = ""
    notify_url: str = ""


@dataclass
class Outcome:
    kind: Literal["answer", "refuse", "withhold", "drop"]
    payout: Payout | None = None
    code: str = ""
    hang_seconds: float = 0.0


@dataclass
class Protocol:
    dialect: Dialect
    build_callback: Callable[[Payout], OutgoingCallback]
    extra: dict[str, Any] = field(default_factory=dict)


class Engine:
    def __init__(self, store: Store, notifier: Notifier, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.notifier = notifier
        self.clock = clock
        self.protocols: dict[str, Protocol] = {}
        self.lock = threading.RLock()
        self.crash = CrashPoints()
        self._rngs: dict[str, random.Random] = {}
        self._depth = 0
        self._outbox: list[Recorded] = []

    def register(self, protocol: Protocol) -> None:
        self.protocols[protocol.dialect.channel] = protocol

    # --- scripts -------------------------------------------------------------------------------------------
    def script(self, channel: str) -> Script:
        return Script.from_dict(self.store.script(channel))

    def save_script(self, channel: str, script: Script) -> None:
        self.store.save_script(channel, script.as_dict())
        if script.seed is not None:
            self._rngs[channel] = random.Random(script.seed)

    def _rng(self, channel: str) -> random.Random:
        return self._rngs.setdefault(channel, random.Random())

    def reset(self) -> None:
        with self.lock:
            self.notifier.clear()
            self.store.reset()
            self._rngs.clear()

    # --- one decision, one transaction ---------------------------------------------------------------------
    @contextmanager
    def decision(self, order_no: str) -> Iterator[None]:
        """Everything one decision writes (the payout row in its state, its callback rows, the attempt count,
        a consumed forced code) commits in one transaction, or nothing does; the callbacks it recorded are
        scheduled only after the commit. A crash anywhere leaves the book as before the decision or after it,
        never in between. Nested decisions join the outer one."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth, self._outbox = 1, []
            try:
                with self.store.transaction():
                    yield
            finally:
                self._depth = 0
                outbox, self._outbox = self._outbox, []
            self.crash.reached("committed", order_no)
            for recorded in outbox:
                self.notifier.schedule(recorded)

    # --- submit --------------------------------------------------------------------------------------------
    def submit(self, channel: str, sub: Submission) -> Outcome:
        self.sleep_latency(channel)
        with self.decision(sub.order_no):
            return self._decide(channel, sub)

    def _decide(self, channel: str, sub: Submission) -> Outcome:
        dialect = self.protocols[channel].dialect
        script = self.script(channel)
        attempt = self.store.bump_attempt(channel, sub.order_no)
        existing = self.store.payout(channel, sub.order_no)
        if existing is not None:
            if (existing.amount, existing.account_number) != (sub.amount, sub.account_number):
                return Outcome("refuse", code=dialect.codes["conflict"])
            self.store.update_payout(existing.id, submissions=existing.submissions + 1)
            return Outcome("answer", self.store.payout_by_id(existing.id))
        if script.maintenance:
            return Outcome("refuse", code=dialect.codes["maintenance"])

        behaviour = behaviour_for(sub.account_number)
        hang = script.hang_seconds
        if behaviour == Behaviour.LOST_REQUEST and attempt == 1:
            return Outcome("drop", hang_seconds=hang)
        if behaviour == Behaviour.TRANSIENT_TWICE and attempt <= 2:
            return Outcome("refuse", code=dialect.codes["busy"])
        if behaviour in (Behaviour.INVALID_ACCOUNT, Behaviour.ACCOUNT_FROZEN, Behaviour.NAME_MISMATCH):
            return Outcome("answer", self._create_failed(channel, sub, behaviour, dialect.codes[behaviour.value]))
        if behaviour == Behaviour.TIMEOUT_THEN_PAID:
            return Outcome("withhold", self._create_paid(channel, sub, behaviour, script), hang_seconds=hang)
        if behaviour != Behaviour.SUCCEED:  # DELAYED, RETURNED
            return Outcome("answer", self._create_paid(channel, sub, behaviour, script))

        if script.force_codes:
            forced = script.force_codes.pop(0)
            self.store.save_script(channel, script.as_dict())
            if forced == FORCE_DROP:
                return Outcome("drop", hang_seconds=hang)
            if forced == FORCE_TIMEOUT:
                return Outcome("withhold", self._create_paid(channel, sub, behaviour, script), hang_seconds=hang)
            return self._code_outcome(channel, sub, behaviour, forced)

        rng = self._rng(channel)
        if rng.random() < script.drop_rate:
            return Outcome("drop", hang_seconds=hang)
        roll, cumulative = rng.random(), 0.0
        for code, rate in script.failure_rates.items():
            cumulative += rate
            if roll < cumulative:
                return self._code_outcome(channel, sub, behaviour, code)
        payout = self._create_paid(channel, sub, behaviour, script)
        if rng.random() < script.timeout_rate:
            return Outcome("withhold", payout, hang_seconds=hang)
        return Outcome("answer", payout)

    def sleep_latency(self, channel: str, script: Script | None = None) -> None:
        script = script or self.script(channel)
        delay = script.latency_ms + (
            self._rng(channel).randint(0, script.latency_jitter_ms) if script.latency_jitter_ms else 0
        )
        if delay:
            time.sleep(delay / 1000)

    def _code_outcome(self, channel: str, sub: Submission, behaviour: Behaviour, code: str) -> Outcome:
        if code in self.protocols[channel].dialect.fail_codes:
            return Outcome("answer", self._create_failed(channel, sub, behaviour, code))
        return Outcome("refuse", code=code)

    def _insert(self, channel: str, sub: Submission, behaviour: Behaviour, **values: Any) -> Payout:
        """A new payout, written once, directly in the state the decision gave it."""
        now = self.clock()
        dialect = self.protocols[channel].dialect
        row = {
            "channel": channel,
            "order_no": sub.order_no,
            "reference": dialect.reference_prefix
            + time.strftime("%Y%m%d", time.localtime(now))
            + uuid.uuid4().hex[:16],
            "amount": sub.amount,
            "currency": sub.currency,
            "account_kind": sub.account_kind,
            "account_number": sub.account_number,
            "holder_name": sub.holder_name,
            "bank_code": sub.bank_code,
            "notify_url": sub.notify_url,
            "behaviour": behaviour.value,
            "submissions": 1,
            "created_at": now,
            "updated_at": now,
        } | values
        if row["status"] == SUCCEEDED:
            row |= self._planned_return(channel, behaviour.value)
        payout = self.store.insert_payout(row)
        self.crash.reached("payout_written", payout.order_no)
        self._announce(payout)
        return payout

    def _create_failed(self, channel: str, sub: Submission, behaviour: Behaviour, code: str) -> Payout:
        return self._insert(channel, sub, behaviour, status=FAILED, provider_code=code)

    def _create_paid(self, channel: str, sub: Submission, behaviour: Behaviour, script: Script) -> Payout:
        dialect = self.protocols[channel].dialect
        if dialect.awaits_payee and not script.auto_confirm:
            return self._insert(
                channel,
                sub,
                behaviour,
                status=AWAITING_PAYEE,
                due_at=self.clock() + PAYEE_CONFIRM_WINDOW,
                due_status=FAILED,
                due_code=dialect.codes["unclaimed"],
            )
        return self._insert(channel, sub, behaviour, **self._paying(channel, behaviour.value))

    def _paying(self, channel: str, behaviour: str) -> dict[str, Any]:
        """The money moves: at once, or after the script's ``delayed_seconds`` for the DELAYED behaviour."""
        if behaviour == Behaviour.DELAYED.value:
            return {
                "status": PROCESSING,
                "due_at": self.clock() + self.script(channel).delayed_seconds,
                "due_status": SUCCEEDED,
                "due_code": "",
            }
        return {"status": SUCCEEDED}

    def _planned_return(self, channel: str, behaviour: str) -> dict[str, Any]:
        """A payout that succeeds now: will its bank return it later (RETURNED behaviour, or ``return_rate``)?"""
        script = self.script(channel)
        if behaviour == Behaviour.RETURNED.value or self._rng(channel).random() < script.return_rate:
            return {"return_at": self.clock() + script.return_after_seconds}
        return {}

    def _move(self, payout: Payout, status: str, code: str = "", **timers: Any) -> Payout:
        """Change a payout's state in one statement (inside the caller's decision), then announce it."""
        values: dict[str, Any] = {"status": status, "provider_code": code, "updated_at": self.clock()}
        values |= {"due_at": None, "due_status": "", "due_code": ""} | timers
        if status == SUCCEEDED and payout.status != SUCCEEDED and payout.return_at is None:
            values |= self._planned_return(payout.channel, payout.behaviour)
        self.store.update_payout(payout.id, **values)
        self.crash.reached("payout_written", payout.order_no)
        moved = self.store.payout_by_id(payout.id)
        if status != payout.status:
            self._announce(moved)
        return moved

    def _announce(self, payout: Payout) -> None:
        """A payout that reached a final state gets its callback row, written in the same decision."""
        assert self._depth, "a payout changes only inside a decision"
        if payout.status in FINAL:
            callback = self.protocols[payout.channel].build_callback(payout)
            recorded = self.notifier.record(callback, self.script(payout.channel))
            if recorded is not None:
                self._outbox.append(recorded)
            self.crash.reached("callbacks_written", payout.order_no)

    # --- time and manual transitions -----------------------------------------------------------------------
    def tick(self) -> None:
        """Run every transition that is due: each payout's is one decision of its own."""
        with self.lock:
            now = self.clock()
            for payout in self.store.due_payouts(now):
                with self.decision(payout.order_no):
                    self._run_scheduled(self.store.payout_by_id(payout.id), now)

    def _run_scheduled(self, payout: Payout, now: float) -> Payout:
        if payout.due_at is not None and payout.due_at <= now:
            return self._move(payout, payout.due_status, payout.due_code)
        if payout.return_at is not None and payout.return_at <= now:
            return self._return(payout)
        return payout

    def _return(self, payout: Payout, code: str = "") -> Payout:
        if payout.status != SUCCEEDED:
            self.store.update_payout(payout.id, return_at=None)
            return self.store.payout_by_id(payout.id)
        dialect = self.protocols[payout.channel].dialect
        return self._move(payout, RETURNED, code or dialect.codes["returned"], return_at=None)

    def advance(self, seconds: float) -> None:
        """Fast-forward the gateway's timers (delays, payee windows, planned returns) by ``seconds``."""
        with self.lock:
            self.store.shift_timers(seconds)
        self.tick()

    def confirm(self, channel: str, order_no: str) -> Payout:
        with self.decision(order_no):
            payout = self._get(channel, order_no)
            if payout.status != AWAITING_PAYEE:
                raise StateError(f"payout is {payout.status}, not awaiting the payee")
            return self._move(payout, **self._paying(channel, payout.behaviour))

    def expire(self, channel: str, order_no: str) -> Payout:
        with self.decision(order_no):
            payout = self._get(channel, order_no)
            if payout.status != AWAITING_PAYEE:
                raise StateError(f"payout is {payout.status}, not awaiting the payee")
            return self._move(payout, FAILED, self.protocols[channel].dialect.codes["unclaimed"])

    def bank_return(self, channel: str, order_no: str, code: str = "") -> Payout:
        with self.decision(order_no):
            payout = self._get(channel, order_no)
            if payout.status != SUCCEEDED:
                raise StateError(f"payout is {payout.status}; only a succeeded payout can be returned")
            return self._return(payout, code)

    def settle(self, channel: str, order_no: str) -> Payout:
        """Run the payout's next scheduled transition now (delay over, payee window shut, return due)."""
        with self.decision(order_no):
            payout = self._get(channel, order_no)
            if payout.due_at is None and payout.return_at is None:
                raise StateError(f"payout is {payout.status} with nothing scheduled")
            return self._run_scheduled(payout, math.inf)

    def _get(self, channel: str, order_no: str) -> Payout:
        if channel not in self.protocols:
            raise NotFound(f"unknown channel {channel!r}")
        payout = self.store.payout(channel, order_no)
        if payout is None:
            raise NotFound(f"no payout {order_no!r} on {channel}")
        return payout

    def lookup(self, channel: str, order_no: str) -> Payout | None:
        self.tick()  # a query right after a deadline sees the settled state
        return self.store.payout(channel, order_no)

    # --- statements ----------------------------------------------------------------------------------------
    def statement_rows(self, channel: str, date: str) -> list[dict[str, Any]]:
        """Final payouts whose last change fell on ``date`` (Asia/Shanghai), planted differences applied."""
        rows = []
        for p in self.store.payouts(channel=channel):
            when = dt.datetime.fromtimestamp(p.updated_at, CST)
            if p.status in FINAL and when.date().isoformat() == date:
                rows.append(
                    {
                        "order_no": p.order_no,
                        "channel_reference": p.reference,
                        "amount": p.amount,
                        "status": STATEMENT_STATUS[p.status],
                        "occurred_at": when.isoformat(timespec="seconds"),
                    }
                )
        for plant in self.store.plants(channel, date):
            rows = _apply_plant(rows, plant, date)
        return rows

    def statement_csv(self, channel: str, date: str) -> bytes:
        """The sandbox statement file, the same CSV for every protocol (see docs/channels.md)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(STATEMENT_COLUMNS)
        for row in self.statement_rows(channel, date):
            writer.writerow([row[c] for c in STATEMENT_COLUMNS])
        return out.getvalue().encode()


STATEMENT_COLUMNS = ("order_no", "channel_reference", "amount", "status", "occurred_at")
STATEMENT_STATUS = {SUCCEEDED: "SUCCESS", FAILED: "FAILED", RETURNED: "RETURNED"}
PLANT_KINDS = ("drop_row", "alter_amount", "alter_status", "add_unknown")


def _apply_plant(rows: list[dict[str, Any]], plant: dict[str, Any], date: str) -> list[dict[str, Any]]:
    kind, order_no = plant["kind"], plant["order_no"]
    if kind == "drop_row":
        return [r for r in rows if r["order_no"] != order_no]
    if kind == "alter_amount":
        return [r | {"amount": plant["amount"]} if r["order_no"] == order_no else r for r in rows]
    if kind == "alter_status":
        return [r | {"status": plant["status"]} if r["order_no"] == order_no else r for r in rows]
    if kind == "add_unknown":
        return [
            *rows,
            {
                "order_no": order_no,
                "channel_reference": plant["reference"] or "UNKNOWN" + uuid.uuid4().hex[:12].upper(),
                "amount": plant["amount"] if plant["amount"] is not None else 100,
                "status": plant["status"] or "SUCCESS",
                "occurred_at": f"{date}T12:00:00+08:00",
            },
        ]
    raise ValueError(f"unknown plant kind {kind!r}")


class StateError(Exception):
    pass


class NotFound(Exception):
    pass
