"""The HTTP transport tells "never sent" from "sent, no answer": only the first is a definite refusal."""

from __future__ import annotations

import socket
import threading

import pytest

from channels.adapters._common import Transport
from channels.base import ChannelRejected, ChannelUnknownOutcome, ErrorAction


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # bound, then closed: nothing listens there


def test_a_refused_connection_is_a_definite_retryable_refusal():
    with pytest.raises(ChannelRejected) as exc:
        Transport(timeout=5).send("POST", f"http://127.0.0.1:{_closed_port()}/payouts", {}, b"{}")
    assert (exc.value.provider_code, exc.value.action) == ("CONNECT_FAILED", ErrorAction.RETRY)


def test_a_connection_dropped_after_the_request_is_an_unknown_outcome():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def read_then_hang_up() -> None:
        conn, _ = server.accept()
        conn.recv(65536)  # the request arrived (and may have been executed) ...
        conn.close()  # ... but no answer comes back

    thread = threading.Thread(target=read_then_hang_up)
    thread.start()
    try:
        with pytest.raises(ChannelUnknownOutcome) as exc:
            Transport(timeout=10).send("POST", f"http://127.0.0.1:{port}/payouts", {}, b"{}")
        assert exc.value.provider_code == "NETWORK_ERROR"
    finally:
        thread.join(timeout=10)
        server.close()
