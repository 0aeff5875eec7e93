"""The gateway process: a ThreadingHTTPServer, four route families, a settlement ticker, a callback sender."""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

from .alipay import Alipay
from .bankdirect import BankDirect
from .control import Control
from .engine import Engine
from .keys import load_or_create
from .notifier import Notifier
from .store import Store
from .web import Request, Response, json_response
from .wechat import WeChat

TICK_SECONDS = 0.25


class Route(Protocol):
    def handle(self, request: Request) -> Response | None: ...


class Gateway:
    def __init__(self, data_dir: Path, base_url: str) -> None:
        self.data_dir = data_dir
        keys = load_or_create(data_dir, base_url)
        self.store = Store(data_dir / "gateway.sqlite3")
        self.notifier = Notifier(self.store)
        self.engine = Engine(self.store, self.notifier)
        self.routes: list[Route] = [
            Control(self.engine, self.notifier.resend, data_dir),
            BankDirect(self.engine, keys),
            Alipay(self.engine, keys),
            WeChat(self.engine, keys),
        ]
        self._stop = threading.Event()

    def dispatch(self, request: Request) -> Response:
        for route in self.routes:
            response = route.handle(request)
            if response is not None:
                return response
        return json_response(404, {"error": f"no route for {request.method} {request.path}"})

    def start_background(self) -> None:
        """Resume what the book still owes (a restart after a crash picks up where the last process stopped):
        callbacks not yet delivered go out, and the ticker's first tick settles payouts whose time came
        meanwhile (delayed pays, payee windows, planned returns: their times are in the book)."""
        self.notifier.resume()
        self.notifier.start()
        threading.Thread(target=self._tick_forever, name="gateway-ticker", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.notifier.stop()

    def _tick_forever(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.engine.tick()
            except Exception:  # keep ticking; one bad row must not stop settlement
                traceback.print_exc()


def make_handler(gateway: Gateway, quiet: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "SandboxGateway/1.0"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command,
                raw_path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                host=self.headers.get("Host", ""),
            )
            try:
                response = gateway.dispatch(request)
            except Exception as exc:
                traceback.print_exc()
                response = json_response(500, {"error": f"gateway bug: {exc}"})
            if response.hang_seconds:
                # The answer is lost: hold the line past the client's timeout, then hang up without a word.
                time.sleep(response.hang_seconds)
                self.close_connection = True
                return
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: object) -> None:
            if not quiet:
                sys.stderr.write(f"gateway {self.address_string()} {format % args}\n")

    return Handler


def run(host: str, port: int, data_dir: Path, quiet: bool = False) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    base_url = f"http://{host}:{port}"
    gateway = Gateway(data_dir, base_url)
    server = ThreadingHTTPServer((host, port), make_handler(gateway, quiet))
    server.daemon_threads = True
    gateway.start_background()
    print(
        json.dumps({"event": "sandbox_gateway_ready", "base_url": base_url, "keys": str(data_dir / "keys.json")}),
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        gateway.stop()
        server.server_close()
