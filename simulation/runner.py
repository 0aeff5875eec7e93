"""One run: build the world, schedule the periodic jobs from the beat schedule, let the people and the faults
loose for ``days``, check the invariants every simulated hour, settle, and report figures and findings."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from celery.schedules import crontab
from celery.schedules import schedule as interval_schedule
from django.conf import settings
from django.db import connection
from django.db.backends.signals import connection_created
from django.test.utils import override_settings

from .behaviour import Actors, Records, local_midnight
from .channel import GATEWAY_URL, Network, SimGateway
from .faults import FaultPlan
from .invariants import Checker, statements_missing
from .kernel import LOCK_TIMEOUT, Clock, Kernel, SimulationStuck, WorkerKilled
from .observer import Finding, Observer
from .web import PlatformWeb
from .world import PLATFORM_URL, build_world

START = datetime(2026, 3, 2, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday


@dataclasses.dataclass
class SimConfig:
    seed: int = 1
    days: float = 7
    settle_hours: float = 30  # after the last day: no new sales or withdrawals, everything in flight settles
    merchants: int = 0  # 0: 8–12, from the seed
    workers: int = 2
    profile: str = ""  # calm / moderate / harsh / none; empty: from the seed
    # Seconds between sweeper runs. Production's beat runs it every SWEEP_INTERVAL_SECONDS (15); every run costs
    # ~2.5 ms of queries even when there is nothing to sweep, so the simulation runs it once a minute unless told
    # otherwise (0: the beat schedule's own interval).
    sweep_every: float = 60
    release_every: float = 0  # seconds between release_due runs; 0: the beat schedule's (60)
    stop_on_failure: bool = False
    start: datetime = START


@dataclasses.dataclass
class SimResult:
    config: SimConfig
    findings: list[Finding]
    figures: dict[str, Any]
    wall_seconds: float

    @property
    def ok(self) -> bool:
        return not self.findings


def run_simulation(config: SimConfig, *, progress: Callable[[str], None] | None = None) -> SimResult:
    wall_start = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="kamen-sim-") as tmp,
        override_settings(
            PLATFORM_BASE_URL=PLATFORM_URL,
            SANDBOX_GATEWAY_URL=GATEWAY_URL,
            SANDBOX_GATEWAY_DATA_DIR=tmp,
            PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        ),
        _quiet_logs() as logs,
        _lock_timeouts(),
        Clock(config.start) as clock,
    ):
        run = _Run(config, clock, Path(tmp), progress or (lambda _: None))
        try:
            run.execute()
            run.kernel.close()
            figures = run.figures(time.perf_counter() - wall_start, logs)
        finally:
            run.close()
        return SimResult(config, run.obs.findings, figures, time.perf_counter() - wall_start)


class _Run:
    def __init__(self, config: SimConfig, clock: Clock, tmp: Path, progress: Callable[[str], None]) -> None:
        self.config = config
        self.clock = clock
        self.progress = progress
        self.faults = FaultPlan.from_seed(config.seed, profile=config.profile)
        self.obs = Observer(config.start, clock)
        self.kernel = Kernel(clock=clock, faults=self.faults, observer=self.obs, workers=config.workers)
        self.web = PlatformWeb(self.obs)
        self.gateway = SimGateway(kernel=self.kernel, faults=self.faults, data_dir=tmp, web=self.web, observer=self.obs)
        self.network = Network(kernel=self.kernel, faults=self.faults, gateway=self.gateway, observer=self.obs)
        self.records = Records()
        self.checker = Checker(observer=self.obs, records=self.records, gateway=self.gateway)
        self._undo: list[Callable[[], None]] = []
        self._wall0 = time.perf_counter()
        self.crash_points = ""
        self.end = config.start + timedelta(days=config.days)
        self.settled = self.end + timedelta(hours=config.settle_hours)

    # --- the run -------------------------------------------------------------------------------------------
    def execute(self) -> None:
        c, dice = self.config, self.faults.dice
        self.kernel.broker.install()
        self._undo.append(self.kernel.broker.uninstall)
        self.network.install()
        self._undo.append(self.network.uninstall)
        self._install_crash_points()
        merchants = c.merchants or dice.randint("world", 8, 12)
        started = time.perf_counter()
        self.world = build_world(
            dice=dice,
            clock=self.clock,
            start=c.start,
            merchants=merchants,
            gateway_configs=self.gateway.adapter_configs(),
        )
        self.obs.wall["world"] += time.perf_counter() - started
        self.actors = Actors(
            kernel=self.kernel, dice=dice, observer=self.obs, world=self.world, web=self.web, records=self.records
        )
        s = self.kernel.scheduler
        self.gateway.plan_episodes(start=c.start, end=self.end, rush=self.actors.rush)
        self._schedule_beat()
        day = local_midnight(c.start)
        while day < self.settled:
            s.at(day, self._plan(day), "plan day")
            day = local_midnight(day + timedelta(hours=26))
        s.at(self.end, self._stop_accepting, "settle")
        hour: datetime = c.start + timedelta(hours=1)
        while hour <= self.settled:
            s.at(hour, self._hourly, "check")
            hour += timedelta(hours=1)
        try:
            s.run_until(
                self.settled, stop=lambda: bool(self.obs.abort) or (c.stop_on_failure and bool(self.obs.findings))
            )
        except SimulationStuck as exc:
            self.obs.finding("simulation_stuck", str(exc))
            return
        if not self.obs.abort and not (c.stop_on_failure and self.obs.findings):
            self.checker.check()

    def _plan(self, day: datetime) -> Callable[[], None]:
        return lambda: self.actors.plan_day(day)

    def _stop_accepting(self) -> None:
        self.actors.accepting = False

    def _hourly(self) -> None:
        started = time.perf_counter()
        self.checker.check()
        self.obs.wall["hourly checks"] += time.perf_counter() - started
        h = self.obs.hour()
        if h % 24 == 0:
            done = sum(self.obs.tasks.values())
            checks = self.obs.wall["hourly checks"]
            self.progress(
                f"seed {self.config.seed} day {h // 24}: {self.obs.counts['withdrawals_submitted']} withdrawals, "
                f"{done} tasks, {len(self.obs.findings)} findings, wall {time.perf_counter() - self._wall0:.0f}s "
                f"(checks {checks:.0f}s)"
            )

    def close(self) -> None:
        self.kernel.close()  # idempotent
        for undo in reversed(self._undo):
            undo()
        self.gateway.store.db.close()

    # --- periodic jobs -------------------------------------------------------------------------------------
    def _schedule_beat(self) -> None:
        """Every entry of the real beat schedule, at its own times; beat publishes, a worker runs it."""
        beat: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
        for name, entry in beat.items():
            task, when = str(entry["task"]), entry["schedule"]
            args, kwargs = tuple(entry.get("args", ())), dict(entry.get("kwargs", {}))
            if isinstance(when, crontab):
                self._cron(task, when, args, kwargs, self.config.start)
                continue
            seconds: float
            if isinstance(when, interval_schedule):
                seconds = when.run_every.total_seconds()  # type: ignore[attr-defined]
            elif isinstance(when, timedelta):
                seconds = when.total_seconds()
            else:
                seconds = float(when)
            if task == "withdrawals.sweep" and self.config.sweep_every:
                seconds = self.config.sweep_every
            if task == "wallets.release_due" and self.config.release_every:
                seconds = self.config.release_every
            offset = self.faults.dice.uniform("beat", 0, min(seconds, 60))
            self._every(task, seconds, args, kwargs, self.config.start + timedelta(seconds=offset), name)

    def _every(
        self, task: str, seconds: float, args: tuple[Any, ...], kwargs: dict[str, Any], at: datetime, name: str
    ) -> None:
        def fire() -> None:
            self.kernel.broker.publish(task, args, kwargs, {})
            nxt = self.clock.now + timedelta(seconds=seconds)
            if nxt <= self.settled:
                self.kernel.scheduler.at(nxt, fire, f"beat {name}")

        self.kernel.scheduler.at(at, fire, f"beat {name}")

    def _cron(self, task: str, cron: Any, args: tuple[Any, ...], kwargs: dict[str, Any], after: datetime) -> None:
        when = next_cron(cron, after)
        if when is None or when > self.settled:
            return

        def fire() -> None:
            self.kernel.broker.publish(task, args, kwargs, {})
            self._cron(task, cron, args, kwargs, when)

        self.kernel.scheduler.at(when, fire, f"beat {task}")

    # --- crash points --------------------------------------------------------------------------------------
    def _install_crash_points(self) -> None:
        """Kill the worker at a step boundary of the payout path, as ``kill -9`` would. The platform's named
        crash points (config.faults) when it has them; otherwise wrappers at the same function boundaries."""
        kernel, faults, obs = self.kernel, self.faults, self.obs

        def maybe_kill(point: str, withdrawal_id: Any) -> None:
            if kernel.current_worker() is not None and faults.roll("crash", faults.crash_rate):
                obs.trace(withdrawal_id, f"worker killed at {point}")
                raise WorkerKilled(point)

        from withdrawals import payouts

        if hasattr(payouts, "crash_point"):  # the payout path names its crash points (config.faults)
            from config import faults as platform_faults

            previous = platform_faults.crash_hook_install(maybe_kill)

            def restore() -> None:
                platform_faults.crash_hook_install(previous)

            self._undo.append(restore)
            self.crash_points = "config.faults: " + ", ".join(platform_faults.POINTS)
            return
        original_start, original_post = payouts.payout_start, payouts.hold_post

        def payout_start(**kwargs: Any) -> Any:
            started = original_start(**kwargs)
            if started is not None:
                maybe_kill("payout.after_route", kwargs.get("withdrawal_id"))
            return started

        def hold_post(**kwargs: Any) -> Any:
            reference = str(kwargs.get("reference", ""))  # withdrawal:<id>:post
            parts = reference.split(":")
            maybe_kill("payout.before_ledger_post", int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None)
            return original_post(**kwargs)

        payouts.payout_start = payout_start
        payouts.hold_post = hold_post

        def undo() -> None:
            payouts.payout_start = original_start
            payouts.hold_post = original_post

        self._undo.append(undo)
        self.crash_points = "wrapped: payout.after_route, payout.before_ledger_post"

    # --- figures -------------------------------------------------------------------------------------------
    def figures(self, wall: float, logs: _LogCounter) -> dict[str, Any]:
        from django.db.models import Count

        from compliance.models import TransactionReport
        from wallets.models import Transfer
        from withdrawals.models import Withdrawal, WithdrawalApproval

        obs = self.obs
        states = dict(Withdrawal.objects.values("status").annotate(n=Count("pk")).values_list("status", "n"))
        two = (
            WithdrawalApproval.objects.values("withdrawal_id")
            .annotate(n=Count("reviewer", distinct=True))
            .filter(n__gte=2)
        )
        book = Counter(p.status for p in self.gateway.store.payouts())
        channel_faults = Counter({f"{k}": v for k, v in obs.faults.items()})
        refusals = {k.split(":", 1)[1]: v for k, v in obs.counts.items() if k.startswith("submit_refused:")}
        return {
            "seed": self.config.seed,
            "profile": self.faults.profile,
            "sim_days": self.config.days,
            "settle_hours": self.config.settle_hours,
            "merchants": len(self.world.merchants) if hasattr(self, "world") else 0,
            "wall_seconds": round(wall, 1),
            "events": self.kernel.scheduler.events_run,
            "sales": obs.counts["sales"],
            "sales_yuan": obs.counts["sales_fen"] // 100,
            "withdrawals_submitted": obs.counts["withdrawals_submitted"],
            "withdrawals_by_state": dict(sorted(states.items())),
            "submissions_refused": dict(sorted(refusals.items())),
            "faults": dict(sorted(channel_faults.items())),
            "gateway_book": dict(sorted(book.items())),
            "retries": obs.counts["retries"],
            "retries_second_click": obs.counts["retries_second_click"],
            "retries_refused": obs.counts["retry_refused"] + obs.counts["retry_first_refused"],
            "reviews": {
                "approvals": WithdrawalApproval.objects.count(),
                "rejections": obs.counts["reviews_rejected"],
                "two_approvers": two.count(),
                "same_approver_refused": obs.counts["approve_refused:same_approver"],
            },
            "step_ups": {k: v for k, v in sorted(obs.counts.items()) if k.startswith(("stepup_", "face_"))},
            "cancellations": obs.counts["cancellations"],
            "reversals": Transfer.objects.filter(kind=Transfer.Kind.REVERSE).count(),
            "reports": dict(TransactionReport.objects.values("kind").annotate(n=Count("pk")).values_list("kind", "n")),
            "tasks": dict(sorted(obs.tasks.items())),
            "task_errors": dict(obs.task_errors),
            "task_wall_seconds": {k: round(v, 1) for k, v in sorted(obs.task_wall.items())},
            "other_wall_seconds": {k: round(v, 1) for k, v in sorted(obs.wall.items())},
            "statement_differences": self._differences(),
            "statements_missing": statements_missing(obs, self.clock.now),
            "crash_points": self.crash_points,
            "checks": self.checker.checks,
            "logs": dict(sorted(logs.counts.items())),
            "error_logs": dict(logs.errors),
            "findings": dict(Counter(f.invariant for f in obs.findings)),
            "counts": dict(sorted(obs.counts.items())),
        }

    def _differences(self) -> dict[str, int]:
        from channels.models import StatementDifference

        rows = StatementDifference.objects.values_list("kind", "resolved_at")
        return dict(Counter(f"{kind}{'' if resolved else ' (open)'}" for kind, resolved in rows))


def next_cron(cron: Any, after: datetime) -> datetime | None:
    """The first local minute after ``after`` that ``cron`` (a celery crontab) matches."""
    local = after.astimezone(ZoneInfo(settings.CELERY_TIMEZONE))
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(400):
        dow = (day.weekday() + 1) % 7  # cron counts from Sunday = 0
        if dow in cron.day_of_week and day.day in cron.day_of_month and day.month in cron.month_of_year:
            for hour in sorted(cron.hour):
                for minute in sorted(cron.minute):
                    candidate = day.replace(hour=hour, minute=minute)
                    if candidate > local:
                        return candidate
        day = (day + timedelta(hours=26)).replace(hour=0)
    return None


class _LogCounter(logging.Handler):
    """Counts warnings and errors by level and logger; keeps the first few distinct error messages."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.errors: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname} {record.name}"] += 1
        if record.levelno >= logging.ERROR:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            key = f"{record.name}: {text[:200]}"
            if key in self.errors or len(self.errors) < 20:
                self.errors[key] = self.errors.get(key, 0) + 1


class _quiet_logs:
    """The platform logs warnings on purpose (stuck withdrawals, refused callbacks); a run counts them instead
    of printing thousands of lines."""

    def __enter__(self) -> _LogCounter:
        root = logging.getLogger()
        self._saved = (root.handlers[:], root.level)
        self._handler = _LogCounter()
        root.handlers = [self._handler]
        root.setLevel(logging.WARNING)
        return self._handler

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.handlers, level = self._saved
        root.setLevel(level)


class _lock_timeouts:
    """A statement waiting for a lock that a parked worker holds would hang the run: make it fail instead. And
    commit without waiting for the WAL flush (as the bench does): a run does not survive a crash of PostgreSQL
    anyway, and it makes every write transaction several times cheaper."""

    @staticmethod
    def _set(sender: Any, connection: Any, **kwargs: Any) -> None:
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
                cursor.execute("SET synchronous_commit = off")

    def __enter__(self) -> None:
        connection_created.connect(self._set)
        if connection.vendor == "postgresql":
            connection.ensure_connection()
            self._set(None, connection)

    def __exit__(self, *exc: object) -> None:
        connection_created.disconnect(self._set)
        if connection.vendor == "postgresql" and connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
                cursor.execute("RESET synchronous_commit")
