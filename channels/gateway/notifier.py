"""Outgoing callbacks: signed by the protocol module, written to the book, delivered on a background thread.

A callback is *recorded* (a row in the book, status ``pending``, with the time it is due) inside the engine's
transaction that changed the payout, and *scheduled* only once that transaction has committed; a gateway that
restarts resumes every callback still pending, so a ``kill -9`` between the payout's change and the
delivery delays the callback but never loses it (at least once, as real providers promise).

Faults from the channel's script are decided once per callback: lost (logged, never sent), duplicate (sent
twice, byte-identical), late (sent ``callback_late_seconds`` later), out of order (held back until the
channel's next callback has been sent, or ``callback_late_seconds`` at most). A failed delivery is retried
twice (1 s, 3 s).
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .script import Script
from .store import Store

RETRY_DELAYS = (1.0, 3.0)
DELIVERY_TIMEOUT = 10.0  # a receiver on a busy machine may be slow; a timeout here only means a duplicate later


@dataclass(frozen=True)
class OutgoingCallback:
    channel: str
    order_no: str
    notify_id: str
    url: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Recorded:
    """A callback row written inside the engine's transaction: scheduled after the commit."""

    callback_id: int
    channel: str
    due: float
    fault: str


@dataclass
class _Scheduled:
    callback_id: int
    attempt: int = 0
    cancelled: bool = False
    then: _Scheduled | None = None  # a held-back callback that goes out right after this one has been sent


class Notifier:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._heap: list[tuple[float, int, _Scheduled]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._held: dict[str, _Scheduled] = {}
        self._rng = random.Random()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gateway-callback")
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="gateway-notifier", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()
            self._held.clear()

    def record(self, callback: OutgoingCallback, script: Script) -> Recorded | None:
        """Decide the callback's faults and write it to the book; call inside the engine's transaction and pass
        the answer to ``schedule`` once it has committed. None: nothing to send (lost, or no notify URL)."""
        rng = self._rng
        if rng.random() < script.callback_lost_rate:
            fault = "lost"
        elif rng.random() < script.callback_out_of_order_rate:
            fault = "out_of_order"
        elif rng.random() < script.callback_late_rate:
            fault = "late"
        else:
            fault = ""
        duplicate = fault != "lost" and rng.random() < script.callback_duplicate_rate
        if duplicate:
            fault = f"{fault}+duplicate" if fault else "duplicate"
        now = time.time()
        status = "lost" if fault == "lost" else ("pending" if callback.url else "no_url")
        due = now + (script.callback_late_seconds if fault.startswith(("late", "out_of_order")) else 0.0)
        callback_id = self.store.insert_callback(
            {
                "channel": callback.channel,
                "order_no": callback.order_no,
                "notify_id": callback.notify_id,
                "status": status,
                "url": callback.url,
                "headers": json.dumps(callback.headers),
                "body": callback.body,
                "fault": fault,
                "created_at": now,
                "due_at": due if status == "pending" else None,
            }
        )
        return Recorded(callback_id, callback.channel, due, fault) if status == "pending" else None

    def schedule(self, recorded: Recorded) -> None:
        with self._cond:
            item = _Scheduled(recorded.callback_id)
            held = self._held.pop(recorded.channel, None)
            if held is not None and not held.cancelled:
                # The held-back callback goes out right after this one has been sent: the receiver sees them
                # swapped, whatever the machine's load.
                held.cancelled = True
                item.then = _Scheduled(held.callback_id, then=held.then)
            self._push(recorded.due, item)
            if recorded.fault.startswith("out_of_order"):
                self._held[recorded.channel] = item
            if recorded.fault.endswith("duplicate"):
                self._push(recorded.due + 0.1, _Scheduled(recorded.callback_id))
            self._cond.notify_all()

    def resume(self) -> int:
        """Schedule every callback the book still owes (after a restart): at its due time, or now if past."""
        pending = self.store.pending_callbacks()
        with self._cond:
            for callback in pending:
                attempt = min(len(callback["delivery_log"]), len(RETRY_DELAYS))
                due = callback["due_at"] if callback["due_at"] is not None else callback["created_at"]
                self._push(due, _Scheduled(callback["id"], attempt))
            self._cond.notify_all()
        return len(pending)

    def resend(self, callback_id: int) -> None:
        with self._cond:
            self._push(time.time(), _Scheduled(callback_id))
            self._cond.notify_all()

    def _push(self, due: float, item: _Scheduled) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), item))

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                now = time.time()
                if not self._heap or self._heap[0][0] > now:
                    timeout = (self._heap[0][0] - now) if self._heap else 1.0
                    self._cond.wait(timeout=max(0.01, min(timeout, 1.0)))
                    continue
                _, _, item = heapq.heappop(self._heap)
                if item.cancelled:
                    continue
                for channel, held in list(self._held.items()):
                    if held is item:
                        del self._held[channel]
            self._pool.submit(self._deliver, item)

    def _deliver(self, item: _Scheduled) -> None:
        callback = self.store.callback(item.callback_id)
        if callback is None:
            return
        request = urllib.request.Request(
            callback["url"], data=callback["body"].encode(), headers=callback["headers"], method="POST"
        )
        entry: dict[str, object] = {"at": time.time(), "attempt": item.attempt + 1}
        delivered = False
        try:
            with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT) as response:
                entry["status"] = response.status
                delivered = 200 <= response.status < 300
        except urllib.error.HTTPError as exc:
            entry["status"] = exc.code
        except (OSError, ValueError) as exc:
            entry["error"] = str(exc)
        retry_at = None
        if not delivered and item.attempt < len(RETRY_DELAYS):
            retry_at = time.time() + RETRY_DELAYS[item.attempt]
        self.store.record_delivery(item.callback_id, entry, delivered, retry_at)
        with self._cond:
            if retry_at is not None:
                self._push(retry_at, _Scheduled(item.callback_id, item.attempt + 1))
            if item.then is not None:
                self._push(time.time(), item.then)
            self._cond.notify_all()
