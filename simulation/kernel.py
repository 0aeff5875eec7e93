"""The simulation's execution kernel: a simulated clock, an event queue, a broker and two worker threads.

Only one thread runs at a time. The scheduler (the main thread) pops the next event, moves the clock to its
time and runs it; an event that starts a task hands control to a worker thread and waits until that worker
either finishes or reaches a channel call. A channel call parks the worker: the network (simulation.channel)
schedules the delivery of the request and of the answer as events, and resumes the worker when the answer (or
a timeout) is due. In between, other tasks, merchants, reviewers, callbacks and beat jobs run — the
interleavings two real worker processes produce, but decided by the seed and reproducible.

A worker that blocks inside the database while another is parked would hang the simulation; every
connection therefore runs with a short ``lock_timeout``, so such a wait becomes an error in the blocked task,
reported as a finding (a lock held across a channel call).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import queue
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import time_machine
from django.db import connection

# A worker that does not hand control back within this many wall-clock seconds is stuck (a deadlock the
# lock_timeout did not catch); the simulation stops rather than hang.
WORKER_WALL_TIMEOUT = 120.0
LOCK_TIMEOUT = "5s"


class WorkerKilled(BaseException):
    """Raised inside a worker to stop it the way ``kill -9`` would: no ``except Exception`` handler sees it; the
    open transaction is rolled back when the connection goes away; what was committed stays."""

    def __init__(self, point: str) -> None:
        super().__init__(point)
        self.point = point


class SimulationStuck(RuntimeError):
    pass


# --- clock and events -------------------------------------------------------------------------------------
class Clock:
    """time-machine, moved only by the scheduler. Time stands still while an event runs."""

    def __init__(self, start: datetime) -> None:
        self.start_at = start
        self._travel = time_machine.travel(start, tick=False)
        self._traveller: Any = None
        self.now = start

    def __enter__(self) -> Clock:
        self._traveller = self._travel.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._travel.stop()

    def move_to(self, when: datetime) -> None:
        self.now = when
        self._traveller.move_to(when)


@dataclasses.dataclass(order=True)
class _Event:
    at: datetime
    seq: int
    run: Callable[[], None] = dataclasses.field(compare=False)
    label: str = dataclasses.field(compare=False, default="")


class Scheduler:
    """A min-heap of (time, sequence) → callable. Events at the same time run in the order they were added;
    each event runs at least a millisecond after the previous one, so rows written by different events never
    share a timestamp (the platform orders by created_at in places)."""

    TICK = timedelta(milliseconds=1)

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._heap: list[_Event] = []
        self._seq = itertools.count()
        self.events_run = 0

    def at(self, when: datetime, run: Callable[[], None], label: str = "") -> None:
        heapq.heappush(self._heap, _Event(when, next(self._seq), run, label))

    def after(self, seconds: float, run: Callable[[], None], label: str = "") -> None:
        self.at(self.clock.now + timedelta(seconds=seconds), run, label)

    def next_time(self) -> datetime | None:
        return self._heap[0].at if self._heap else None

    def run_until(self, end: datetime, *, stop: Callable[[], bool] = lambda: False) -> None:
        while self._heap and self._heap[0].at <= end and not stop():
            event = heapq.heappop(self._heap)
            when = max(event.at, self.clock.now + self.TICK)
            self.clock.move_to(when)
            self.events_run += 1
            event.run()
        if not stop() and self.clock.now < end:
            self.clock.move_to(end)


# --- broker -----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Message:
    id: str
    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    due: datetime
    copy: str = ""  # "duplicate" / "redelivered" for copies the broker made


class Broker:
    """Stands in for Redis: what ``Task.apply_async`` publishes becomes a message due at now + countdown (or at
    its eta). It may lose a message or deliver it twice, as the seed says (``faults.broker_*``)."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._ids = itertools.count(1)
        self.published: dict[str, int] = {}
        self._original_apply_async: Any = None

    def install(self) -> None:
        from celery.app.task import Task

        broker = self
        self._original_apply_async = Task.apply_async

        def apply_async(task: Any, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
            return broker.publish(task.name, tuple(args or ()), dict(kwargs or {}), options)

        Task.apply_async = apply_async  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        from celery.app.task import Task

        if self._original_apply_async is not None:
            Task.apply_async = self._original_apply_async  # type: ignore[method-assign]

    def publish(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> Any:
        from celery.result import AsyncResult

        now = self.kernel.clock.now
        due = now
        if options.get("eta") is not None:
            due = max(now, options["eta"])
        elif options.get("countdown"):
            due = now + timedelta(seconds=float(options["countdown"]))
        message = Message(id=f"sim-{next(self._ids)}", task=name, args=args, kwargs=kwargs, due=due)
        self.published[name] = self.published.get(name, 0) + 1
        faults = self.kernel.faults
        if faults.roll("broker", faults.broker_lose_rate):
            self.kernel.count_fault("broker_message_lost")
            subject = args[0] if args and isinstance(args[0], int) else None
            self.kernel.trace(subject, f"broker lost {name}{args}")
            self.kernel.observer.lost_messages[name].append(now)
        else:
            self._deliver(message)
            if faults.roll("broker", faults.broker_duplicate_rate):
                self.kernel.count_fault("broker_message_duplicated")
                later = faults.uniform("broker", 0.5, 60.0)
                self._deliver(dataclasses.replace(message, due=due + timedelta(seconds=later), copy="duplicate"))
        return AsyncResult(message.id)

    def redeliver(self, message: Message, *, after: float) -> None:
        self._deliver(
            dataclasses.replace(message, due=self.kernel.clock.now + timedelta(seconds=after), copy="redelivered")
        )

    def _deliver(self, message: Message) -> None:
        self.kernel.scheduler.at(message.due, lambda: self.kernel.message_due(message), f"message {message.task}")


# --- workers ----------------------------------------------------------------------------------------------
_STOP = object()


@dataclasses.dataclass
class Yield:
    """What a worker hands back to the scheduler."""

    kind: str  # "done", "error", "killed", "net"
    payload: Any = None


class Worker:
    """A worker process: one thread with its own database connection, running one task at a time."""

    def __init__(self, kernel: Kernel, index: int) -> None:
        self.kernel = kernel
        self.name = f"worker-{index}"
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.outbox: queue.Queue[Yield] = queue.Queue()
        self.message: Message | None = None
        self.last: Message | None = None  # the message whose end was reported last
        self.thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self.thread.start()

    @property
    def busy(self) -> bool:
        return self.message is not None

    # --- scheduler side ----------------------------------------------------------------------------------
    def start(self, message: Message) -> Yield:
        self.message = message
        self.inbox.put(message)
        return self._await()

    def resume(self, reply: Any) -> Yield:
        self.inbox.put(reply)
        return self._await()

    def stop(self) -> None:
        self.inbox.put(_STOP)
        self.thread.join(timeout=30)

    def _await(self) -> Yield:
        try:
            result = self.outbox.get(timeout=WORKER_WALL_TIMEOUT)
        except queue.Empty:
            raise SimulationStuck(
                f"{self.name} running {self.message} did not hand back control in {WORKER_WALL_TIMEOUT}s"
            ) from None
        if result.kind != "net":
            self.last, self.message = self.message, None
        return result

    # --- worker side -------------------------------------------------------------------------------------
    def wait(self, op: Any) -> Any:
        """Park this worker at a channel call until the scheduler resumes it with the answer."""
        self.outbox.put(Yield("net", op))
        reply = self.inbox.get()
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def _main(self) -> None:
        from config.celery import app

        while True:
            message = self.inbox.get()
            if message is _STOP:
                connection.close()
                return
            try:
                app.tasks[message.task].apply(args=message.args, kwargs=message.kwargs, task_id=message.id, throw=True)
            except WorkerKilled as killed:
                # The process is gone: its connection (and any open transaction) with it.
                connection.close()
                self.outbox.put(Yield("killed", killed.point))
            except BaseException as exc:  # a task that raises is a finding; the worker itself goes on
                self.outbox.put(Yield("error", (type(exc).__name__, str(exc), traceback.format_exc())))
                connection.close()  # the connection may be in an aborted transaction
            else:
                self.outbox.put(Yield("done"))


def tasks_load() -> None:
    """Import every app's tasks module, so that every task the beat schedule names is registered."""
    import importlib

    from django.apps import apps

    for app_config in apps.get_app_configs():
        try:
            importlib.import_module(f"{app_config.name}.tasks")
        except ModuleNotFoundError as exc:
            if exc.name != f"{app_config.name}.tasks":
                raise


class Kernel:
    """Ties the clock, the scheduler, the broker and the workers together. ``faults`` decides the broker's and
    the workers' misfortunes; ``observer`` receives task outcomes, fault counts and traces."""

    def __init__(self, *, clock: Clock, faults: Any, observer: Any, workers: int = 2) -> None:
        tasks_load()
        self.clock = clock
        self.scheduler = Scheduler(clock)
        self.faults = faults
        self.observer = observer
        self.broker = Broker(self)
        self.ready: deque[Message] = deque()
        self.workers = [Worker(self, i + 1) for i in range(workers)]
        self._by_thread = {w.thread.ident: w for w in self.workers}
        self.network: Any = None  # set by simulation.channel; resumes parked workers
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for worker in self.workers:
            if worker.busy:  # parked at a channel call when the run ends: it dies with the run
                worker.resume(WorkerKilled("simulation.end"))
            worker.stop()

    # --- who is running ------------------------------------------------------------------------------------
    def current_worker(self) -> Worker | None:
        return self._by_thread.get(threading.get_ident())

    # --- messages ----------------------------------------------------------------------------------------
    def message_due(self, message: Message) -> None:
        self.ready.append(message)
        self.dispatch()

    def dispatch(self) -> None:
        while self.ready:
            worker = next((w for w in self.workers if not w.busy), None)
            if worker is None:
                return
            message = self.ready.popleft()
            self.observer.task_started(message)
            started = time.perf_counter()
            result = worker.start(message)
            self.observer.task_wall[message.task] += time.perf_counter() - started
            self._handle(worker, result)

    def resume(self, worker: Worker, reply: Any) -> None:
        """Give a parked worker its answer (or an exception to raise) and run it to its next yield."""
        started = time.perf_counter()
        result = worker.resume(reply)
        if worker.message is not None or worker.last is not None:
            name = (worker.message or worker.last).task  # type: ignore[union-attr]
            self.observer.task_wall[name] += time.perf_counter() - started
        self._handle(worker, result)
        self.dispatch()

    def _handle(self, worker: Worker, result: Yield) -> None:
        if result.kind == "net":
            self.network.parked(worker, result.payload)
            return
        finished = worker.last
        assert finished is not None
        if result.kind == "killed":
            self.count_fault(f"worker_killed:{result.payload}")
            self._after_kill(finished)
        elif result.kind == "error":
            self.observer.task_error(finished, *result.payload)
        self.observer.task_finished(finished, result.kind)

    def _after_kill(self, message: Message) -> None:
        """A killed worker's message (acks_late): requeued at once when only the child died
        (task_reject_on_worker_lost), after the visibility timeout when the whole worker went, or lost."""
        choice = self.faults.choice("broker", ["requeue", "visibility_timeout", "lost"], [0.6, 0.3, 0.1])
        if choice == "requeue":
            self.broker.redeliver(message, after=self.faults.uniform("broker", 1.0, 10.0))
        elif choice == "visibility_timeout":
            self.broker.redeliver(message, after=3600.0)
        self.count_fault(f"killed_message_{choice}")

    # --- observation helpers -----------------------------------------------------------------------------
    def count_fault(self, kind: str) -> None:
        self.observer.fault(kind)

    def trace(self, subject: Any, text: str) -> None:
        self.observer.trace(subject, text)
