"""Fixtures driving the REAL sandbox gateway: a ``manage.py sandbox_gateway`` subprocess on a free loopback
port with a temporary data dir, plus a callback receiver. No database is used anywhere in these tests."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from channels.adapters import build_adapter
from channels.gateway.testing import GatewayClient, free_port, running_gateway

# An answer the gateway gives is never mistaken for a lost one, however busy the machine: adapters wait
# ADAPTER_TIMEOUT. A withheld answer holds the line HANG_SECONDS, far longer than any adapter here waits, and a
# call whose answer is withheld is made ``impatient``: it gives up after IMPATIENT_TIMEOUT and sees a timeout.
ADAPTER_TIMEOUT = 10.0
HANG_SECONDS = 60.0
IMPATIENT_TIMEOUT = 2.0


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayClient]:
    with running_gateway(tmp_path_factory.mktemp("gateway")) as client:
        yield client


class Receiver:
    """Our side's notify endpoint: records every POST and answers like a well-behaved merchant."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append((self.path, dict(self.headers.items()), body))
                reply = b"success"
                self.send_response(200)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, needle: bytes) -> list[bytes]:
        return [body for _, _, body in self.received if needle in body]


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture(autouse=True)
def fresh_gateway(request: pytest.FixtureRequest) -> None:
    """Every gateway test starts from an empty book with quick hangs; pure unit tests skip the gateway."""
    if "gateway" not in request.fixturenames:
        return
    client: GatewayClient = request.getfixturevalue("gateway")
    client.control("POST", "/reset")
    for channel in ("bankdirect", "alipay", "wechat"):
        client.script(channel, hang_seconds=HANG_SECONDS)


@contextmanager
def impatient(adapter: Any) -> Iterator[Any]:
    """The adapter, waiting only IMPATIENT_TIMEOUT for answers: for the one call whose answer is withheld."""
    patient, adapter.transport.timeout = adapter.transport.timeout, IMPATIENT_TIMEOUT
    try:
        yield adapter
    finally:
        adapter.transport.timeout = patient


def adapter_config(gateway: GatewayClient, receiver: Receiver, name: str, **overrides: Any) -> dict[str, Any]:
    config = dict(gateway.keys["adapters"][name])
    config.update(notify_url=f"{receiver.url}/notify/{name}", timeout=ADAPTER_TIMEOUT, **overrides)
    return config


@pytest.fixture
def bankdirect(gateway: GatewayClient, receiver: Receiver) -> Any:
    return build_adapter("bankdirect", "bank-sandbox", adapter_config(gateway, receiver, "bankdirect"))


@pytest.fixture
def alipay(gateway: GatewayClient, receiver: Receiver) -> Any:
    return build_adapter("alipay", "alipay-sandbox", adapter_config(gateway, receiver, "alipay"))


@pytest.fixture
def wechat(gateway: GatewayClient, receiver: Receiver) -> Any:
    return build_adapter("wechat", "wechat-sandbox", adapter_config(gateway, receiver, "wechat"))


def order_no() -> str:
    return "T" + uuid.uuid4().hex[:24]
