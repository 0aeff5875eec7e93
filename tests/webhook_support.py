"""Real HTTP receivers for the webhook tests: http.server in a thread on 127.0.0.1, verifying every delivery with
the documentation's own example client (docs/example_client.py), de-duplicating by event id as the docs say."""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def example_client() -> Any:
    """docs/example_client.py as a module (docs/ is not a package: it is what a partner copies)."""
    name = "docs_example_client"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "example_client.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@dataclass
class Received:
    """One POST as it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    event_id: str = ""
    verified: bool = False
    error: str = ""


# (request number for this event id starting at 1, the verified event or None) -> (status, extra headers)
Behaviour = Callable[[int, "dict[str, Any] | None"], "tuple[int, dict[str, str]]"]


def always_ok(n: int, event: dict[str, Any] | None) -> tuple[int, dict[str, str]]:
    return 200, {}


@dataclass
class Receiver:
    """A webhook receiver written from docs/webhooks.md: verify with the endpoint secret, answer per
    ``behaviour``, and store each verified event once (by event id) when answering 2xx."""

    secret: str = ""
    behaviour: Behaviour = always_ok
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    store: Any = None
    per_event: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.store = example_client().EventStore()

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        assert isinstance(host, str)
        return f"http://{host}:{port}/hooks"

    @property
    def events(self) -> dict[str, dict[str, Any]]:
        return self.store.events

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Received]:
        client = example_client()
        seen = Received(path=path, headers=headers, body=body, status=0)
        event = None
        try:
            event = client.verify_webhook(self.secret, headers, body)
            seen.verified, seen.event_id = True, event["id"]
        except client.WebhookVerificationError as exc:
            seen.error = str(exc)
        with self.lock:
            n = self.per_event[seen.event_id] = self.per_event.get(seen.event_id, 0) + 1
        status, extra = self.behaviour(n, event) if event is not None else (400, {})
        if event is not None and 200 <= status < 300:
            self.store.add(event)
        seen.status = status
        with self.lock:
            self.received.append(seen)
        return status, extra, seen

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, extra, _ = receiver.handle(self.path, dict(self.headers.items()), body)
                try:
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the platform gave up waiting (the timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
