"""Start the REAL sandbox gateway process and talk to its control API: shared by channels/tests and the
platform's end-to-end tests (tests/channels_e2e). Test and demo use only."""

from __future__ import annotations

import json
import os
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

    def act(self, channel: str, order_no: str, action: str, body: Any = None) -> dict[str, Any]:
        return self.control("POST", f"/payouts/{channel}/{order_no}/{action}", body or {})["payout"]

    def callbacks(self, channel: str, order_no: str) -> list[dict[str, Any]]:
        return self.control("GET", f"/callbacks?channel={channel}&order_no={order_no}")["callbacks"]

    def wait_callbacks(
        self, channel: str, order_no: str, count: int = 1, status: str = "delivered", timeout: float = 8.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.callbacks(channel, order_no) if not status or c["status"] == status]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@contextmanager
def running_gateway(data_dir: Path, *, startup_timeout: float = 30.0) -> Iterator[GatewayClient]:
    """``manage.py sandbox_gateway`` on a free loopback port with ``data_dir``; stopped on exit."""
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "sandbox_gateway",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--quiet",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + startup_timeout
    while True:
        try:
            with urllib.request.urlopen(base_url + "/_control/health", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            output = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"sandbox gateway did not start:\n{output}")
        time.sleep(0.1)
    try:
        yield GatewayClient(base_url, data_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
