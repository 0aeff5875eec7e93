"""What a run saw: counters for the figures, a trace per withdrawal (actions and faults that touched it), and
findings — invariant violations and errors — each with the simulated time it was found."""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

# Payout and query tasks one withdrawal may get in an hour: polling backs off to minutes, so a few dozen is a
# lot; thousands mean copies of the polling chain multiply, and the run would only get slower.
STORM_ABORT = 2000


@dataclasses.dataclass
class Finding:
    invariant: str
    at: datetime
    hour: int
    message: str
    withdrawal_id: int | None = None
    detail: str = ""
    evidence: list[str] = dataclasses.field(default_factory=list)


class Observer:
    def __init__(self, start: datetime, clock: Any) -> None:
        self.start = start
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.tasks: Counter[str] = Counter()
        self.task_errors: Counter[str] = Counter()
        self.task_wall: defaultdict[str, float] = defaultdict(float)  # wall-clock seconds running each task
        self.wall: defaultdict[str, float] = defaultdict(float)  # wall-clock seconds: world, checks, people, callbacks
        self.findings: list[Finding] = []
        self._finding_keys: set[tuple[str, Any, str]] = set()
        self.traces: dict[str, list[str]] = defaultdict(list)  # order_no or "w<id>" -> lines
        self.order_to_withdrawal: dict[str, int] = {}
        self.job_runs: dict[str, list[datetime]] = defaultdict(list)  # task name -> start times (completed runs)
        self.lost_messages: dict[str, list[datetime]] = defaultdict(list)  # task name -> when the broker lost one
        self._running: dict[str, datetime] = {}
        self.tasks_this_hour: Counter[int] = Counter()  # payout / query tasks per withdrawal since the last check
        self.abort = ""  # set when the run cannot usefully go on (a task storm): the scheduler stops

    # --- time ----------------------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.clock.now

    def hour(self, when: datetime | None = None) -> int:
        return int(((when or self.now) - self.start).total_seconds() // 3600)

    def stamp(self) -> str:
        return self.stamp_of(self.now)

    def stamp_of(self, when: datetime) -> str:
        """Simulated time as day + hh:mm:ss.mmm since the start of the run (negative: the history before it)."""
        elapsed = (when - self.start).total_seconds()
        sign, elapsed = ("-", -elapsed) if elapsed < 0 else ("", elapsed)
        day, rest = divmod(elapsed, 86400)
        return f"{sign}d{int(day)}+{int(rest // 3600):02d}:{int(rest % 3600 // 60):02d}:{rest % 60:06.3f}"

    # --- counters ------------------------------------------------------------------------------------------
    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def fault(self, kind: str) -> None:
        self.faults[kind] += 1

    # --- traces --------------------------------------------------------------------------------------------
    def trace(self, subject: Any, text: str) -> None:
        if subject is None:
            self.traces["run"].append(f"{self.stamp()} {text}")
            return
        key = f"w{subject}" if isinstance(subject, int) else str(subject)
        self.traces[key].append(f"{self.stamp()} {text}")

    def trace_withdrawal(self, withdrawal_id: int, order_no: str, text: str) -> None:
        self.order_to_withdrawal[order_no] = withdrawal_id
        self.traces[f"w{withdrawal_id}"].append(f"{self.stamp()} {text}")

    def trace_order(self, order_no: str, text: str) -> None:
        if not order_no:
            return
        wid = self.order_to_withdrawal.get(order_no)
        key = f"w{wid}" if wid is not None else order_no
        self.traces[key].append(f"{self.stamp()} {text}")

    def trace_for(self, withdrawal_id: int) -> list[str]:
        return list(self.traces.get(f"w{withdrawal_id}", []))

    # --- tasks ---------------------------------------------------------------------------------------------
    def task_started(self, message: Any) -> None:
        self.tasks[message.task] += 1
        self._running[message.id] = self.now
        if message.task in ("withdrawals.payout", "withdrawals.query") and message.args:
            wid = message.args[0]
            self.trace(wid, f"task {message.task.split('.')[-1]} {message.copy or ''}".rstrip())
            self.tasks_this_hour[wid] += 1
            if self.tasks_this_hour[wid] == STORM_ABORT:
                self.finding(
                    "task_storm",
                    f"withdrawal {wid} got {STORM_ABORT} payout/query tasks within the hour: polling chains multiply; "
                    "the run stops here",
                    wid,
                )
                self.abort = f"task storm on withdrawal {wid}"

    def task_finished(self, message: Any, how: str) -> None:
        started = self._running.pop(message.id, self.now)
        if how in ("done", "error"):
            self.job_runs[message.task].append(started)
        if how != "done" and message.task in ("withdrawals.payout", "withdrawals.query") and message.args:
            self.trace(message.args[0], f"task {message.task.split('.')[-1]} ended: {how}")

    def task_error(self, message: Any, kind: str, text: str, tb: str) -> None:
        key = f"{message.task}: {kind}: {text.splitlines()[0][:160] if text else ''}"
        self.task_errors[key] += 1
        wid = message.args[0] if message.args and isinstance(message.args[0], int) else None
        self.finding("task_error", f"task {message.task}{message.args} raised {kind}: {text[:300]}", wid, tb)

    def last_run(self, task: str) -> datetime | None:
        runs = self.job_runs.get(task)
        return runs[-1] if runs else None

    # --- findings ------------------------------------------------------------------------------------------
    def finding(
        self,
        invariant: str,
        message: str,
        withdrawal_id: int | None = None,
        detail: str = "",
        evidence: list[str] | None = None,
        key: str = "",
    ) -> bool:
        """Record a violation once per (invariant, withdrawal, key). Returns True when it is new."""
        dedupe = (invariant, withdrawal_id, key or (message if withdrawal_id is None else ""))
        if dedupe in self._finding_keys:
            return False
        self._finding_keys.add(dedupe)
        self.findings.append(Finding(invariant, self.now, self.hour(), message, withdrawal_id, detail, evidence or []))
        return True
