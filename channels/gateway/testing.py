"""Start the REAL sandbox gateway process and talk to its control API: shared by channels/tests and the
platform's end-to-end tests (tests/channels_e2e). Test and demo use only."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayClient:
    def __init__(self, base_url: str, data_dir: Path) -> None:
        self.base_url = base_url
        self.data_dir = data_dir
        self.keys: dict[str, Any] = json.loads((data_dir / "keys.json").read_text())

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + "/_control" + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"control {method} {path}: {exc.code} {exc.read()!r}")
        return json.loads(raw) if "json" in kind else raw.decode()

    def script(self, channel: str, **values: Any) -> dict[str, Any]:
        return self.control("POST", f"/channels/{channel}/script", values)

    def payouts(self, channel: str = "", order_no: str = "") -> list[dict[str, Any]]:
        return self.control("GET", f"/payouts?channel={channel}&order_no={order_no}")["payouts"]

    def attempts(self, channel: str, order_no: str) -> int:
        """How many submits of ``order_no`` the gateway has decided on (a dropped one counts; see ``engine``)."""
        return int(self.control("GET", f"/attempts?channel={channel}&order_no={order_no}")["attempts"])

    def wait_attempts(self, channel: str, order_no: str, count: int, timeout: float = 30.0) -> int:
        """Poll (bounded) until the gateway has decided on ``count`` submits of ``order_no``: a client that gave
        up waiting for an answer cannot otherwise know that its request has been dealt with."""
        deadline = time.monotonic() + timeout
        while (seen := self.attempts(channel, order_no)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return seen

    def act(self, channel: str, order_no: str, action: str, body: Any = None) -> dict[str, Any]:
        return self.control("POST", f"/payouts/{channel}/{order_no}/{action}", body or {})["payout"]

    def callbacks(self, channel: str, order_no: str) -> list[dict[str, Any]]:
        return self.control("GET", f"/callbacks?channel={channel}&order_no={order_no}")["callbacks"]

    def wait_callbacks(
        self, channel: str, order_no: str, count: int = 1, status: str = "delivered", timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Poll (bounded, generous: the gateway and the receiver may run on a busy machine) until ``count``
        callbacks of ``order_no`` have ``status``; returns what there is at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.callbacks(channel, order_no) if not status or c["status"] == status]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


class GatewayProcess:
    """One ``manage.py sandbox_gateway`` process on a fixed loopback port and data dir: start it, kill it like
    ``kill -9`` would, start it again on the same port and book."""

    def __init__(self, data_dir: Path, port: int | None = None, startup_timeout: float = 30.0) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayClient:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
        command = [sys.executable, "manage.py", "sandbox_gateway", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--quiet"]
        # Output goes to a file: a pipe nobody reads fills up and blocks the gateway mid-request.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.proc = proc
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                with urllib.request.urlopen(self.base_url + "/_control/health", timeout=1) as response:
                    if response.status == 200:
                        return GatewayClient(self.base_url, self.data_dir)
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"sandbox gateway did not start:\n{self.output()}")
            time.sleep(0.1)

    def kill(self) -> int:
        """SIGKILL, as ``kill -9``: no cleanup of any kind. Returns the exit status (-9)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        return self.wait_dead()

    def wait_dead(self, timeout: float = 30.0) -> int:
        """Wait for the process to end (it kills itself at an armed crash point); its exit status."""
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "gateway.log"

    def output(self) -> str:
        """Everything the gateway processes on this data dir printed."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def running_gateway(data_dir: Path, *, startup_timeout: float = 30.0) -> Iterator[GatewayClient]:
    """``manage.py sandbox_gateway`` on a free loopback port with ``data_dir``; stopped on exit."""
    process = GatewayProcess(data_dir, startup_timeout=startup_timeout)
    try:
        yield process.start()
    finally:
        process.stop()
