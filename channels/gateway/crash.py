"""Test-only crash points: armed through the control API, the gateway kills itself with SIGKILL (exactly what
``kill -9`` does: no cleanup, no flush, no atexit) when a decision reaches the armed step, so a test can prove
the book survives a crash *there*, deterministically. A restarted gateway comes up with nothing armed.

Points, in the order a decision passes them:
- ``payout_written``: the payout row has been inserted or changed (its callbacks not yet written);
- ``callbacks_written``: the payout's callback rows have been written;
- ``committed``: the decision has committed, its callbacks are not scheduled and no answer has been sent.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

POINTS = ("payout_written", "callbacks_written", "committed")


class CrashPoints:
    def __init__(self) -> None:
        self._armed: dict[str, str] = {}  # point -> order number it waits for ("" for any)
        self._lock = threading.Lock()

    def arm(self, point: str, order_no: str = "") -> None:
        if point not in POINTS:
            raise ValueError(f"point must be one of {POINTS}")
        with self._lock:
            self._armed[point] = order_no

    def armed(self) -> dict[str, str]:
        with self._lock:
            return dict(self._armed)

    def disarm(self) -> None:
        with self._lock:
            self._armed.clear()

    def reached(self, point: str, order_no: str) -> None:
        with self._lock:
            armed = self._armed.get(point)
        if armed is not None and armed in ("", order_no):
            sys.stderr.write(f"gateway: crash point {point} reached for {order_no}: SIGKILL\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
