"""The sandbox gateway survives ``kill -9`` like the provider it stands in for: a REAL gateway process is killed
(at an armed crash point inside a decision, or from outside during a burst of payouts), restarted on the same
port and data dir, and every order settles to one final payout, with its callbacks delivered.

The platform's part is played the way the platform plays it: an order whose answer never came is queried; "not
found" means the channel never got it, so it is sent again under the SAME order number; "processing" waits
(here the gateway's clock is fast-forwarded instead of sleeping)."""

from __future__ import annotations

import collections
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from channels.adapters import build_adapter
from channels.base import ChannelError, ChannelRejected, ChannelUnknownOutcome, PayoutRequest, PayoutResult
from channels.base import PayoutStatus as S
from channels.gateway.crash import POINTS
from channels.gateway.store import Store
from channels.gateway.testing import GatewayClient, GatewayProcess

from .conftest import Receiver
from .test_bankdirect import card_request

pytestmark = [pytest.mark.gateway, pytest.mark.slow]

SETTLE_WITHIN = 60.0  # seconds: a generous bound for a busy machine; a healthy run needs well under one
FINAL = {S.SUCCEEDED, S.FAILED, S.RETURNED}
# What each sandbox card ends as: "" pays, 33 answer lost then paid, 44 delayed then paid, 55 busy twice then
# paid, 66 first request lost, 88 paid then returned by the bank, 11 invalid account.
ENDS_AS = {"": S.SUCCEEDED, "33": S.SUCCEEDED, "44": S.SUCCEEDED, "55": S.SUCCEEDED, "66": S.SUCCEEDED}
ENDS_AS |= {"88": S.RETURNED, "11": S.FAILED}
CALLBACKS_FOR = {S.SUCCEEDED: {S.SUCCEEDED}, S.RETURNED: {S.SUCCEEDED, S.RETURNED}, S.FAILED: {S.FAILED}}


@pytest.fixture
def crashable(tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path / "gateway")
    client = process.start()
    client.script("bankdirect", hang_seconds=1.0, return_after_seconds=3600)  # returns happen when we say
    yield process
    process.stop()


def client_of(process: GatewayProcess) -> GatewayClient:
    return GatewayClient(process.base_url, process.data_dir)


def adapter_for(process: GatewayProcess, receiver: Receiver) -> Any:
    config = dict(client_of(process).keys["adapters"]["bankdirect"])
    config.update(notify_url=f"{receiver.url}/notify/bankdirect", timeout=10)
    return build_adapter("bankdirect", "bank-sandbox", config)


def settle_like_the_platform(adapter: Any, gw: GatewayClient, request: PayoutRequest, ends_as: S) -> PayoutResult:
    deadline = time.monotonic() + SETTLE_WITHIN
    while True:
        result: PayoutResult | None = None
        try:
            result = adapter.query(request.order_no)
            if result.status == S.NOT_FOUND:
                result = adapter.submit(request)  # never received: again, under the same order number
        except ChannelUnknownOutcome:
            pass  # no answer (gateway busy, or the answer withheld): ask again
        except ChannelRejected as exc:
            assert exc.provider_code == "SYSTEM_BUSY", exc  # "busy": not accepted, retry under the same number
        if result is not None and result.status == ends_as:
            return result
        if result is not None and result.status in FINAL and result.status != S.SUCCEEDED:
            raise AssertionError(f"{request.order_no} ended {result.status}, expected {ends_as}")
        assert time.monotonic() < deadline, f"{request.order_no} not settled: last answer {result}"
        if result is not None and result.status in (S.PROCESSING, S.SUCCEEDED):
            gw.control("POST", "/clock/advance", {"seconds": 3600})  # delays and planned returns fall due
        time.sleep(0.05)


def callback_statuses(adapter: Any, receiver: Receiver, order_no: str) -> set[S]:
    bodies = [(headers, body) for _, headers, body in list(receiver.received) if order_no.encode() in body]
    return {adapter.parse_callback(headers, body).status for headers, body in bodies}


def wait_callbacks(adapter: Any, receiver: Receiver, order_no: str, expected: set[S]) -> set[S]:
    deadline = time.monotonic() + SETTLE_WITHIN
    while not expected <= (seen := callback_statuses(adapter, receiver, order_no)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


def kill_9_at(process: GatewayProcess, point: str, order_no: str, action: Any) -> None:
    """Arm the crash point for ``order_no``, run ``action`` (which the dying gateway never answers), and check
    that the gateway died of SIGKILL right there."""
    client_of(process).control("POST", "/crash", {"point": point, "order_no": order_no})
    action()
    assert process.wait_dead() == -signal.SIGKILL
    assert f"crash point {point} reached for {order_no}" in process.output()


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_inside_a_submit_leaves_the_decision_whole_or_absent_and_the_order_settles_once(
    point: str, crashable: GatewayProcess, receiver: Receiver
) -> None:
    adapter = adapter_for(crashable, receiver)
    request = card_request()

    def submit() -> None:
        with pytest.raises(ChannelUnknownOutcome) as caught:
            adapter.submit(request)
        assert caught.value.provider_code == "NETWORK_ERROR"  # the connection died with the gateway

    kill_9_at(crashable, point, request.order_no, submit)
    gw = crashable.start()
    assert gw.control("GET", "/crash")["armed"] == {}  # a restarted gateway comes up with nothing armed

    # Before the commit nothing of the decision survives (the order was never received); after it, all of it.
    first = adapter.query(request.order_no).status
    assert first == (S.SUCCEEDED if point == "committed" else S.NOT_FOUND)
    result = settle_like_the_platform(adapter, gw, request, S.SUCCEEDED)
    [payout] = gw.payouts("bankdirect", request.order_no)
    assert (payout["status"], payout["amount"], payout["reference"]) == (
        "succeeded",
        request.amount,
        result.channel_reference,
    )
    assert gw.attempts("bankdirect", request.order_no) == 1  # the crashed attempt counts only if its payout does
    assert wait_callbacks(adapter, receiver, request.order_no, {S.SUCCEEDED}) == {S.SUCCEEDED}
    # The receiver has it; the gateway records the delivery once the receiver's answer is back.
    assert len(gw.wait_callbacks("bankdirect", request.order_no, timeout=SETTLE_WITHIN)) == 1
    assert len(gw.callbacks("bankdirect", request.order_no)) == 1  # one callback: the decision was recorded once


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_inside_a_scheduled_transition_resumes_it_after_restart(
    point: str, crashable: GatewayProcess, receiver: Receiver
) -> None:
    """A delayed payout falls due and the gateway dies while paying it; a planned bank return is due too. The
    restarted gateway pays the one, returns the other and delivers every callback, with no request from us."""
    adapter = adapter_for(crashable, receiver)
    delayed, returned = card_request("44"), card_request("88")
    assert adapter.submit(delayed).status == S.PROCESSING
    assert adapter.submit(returned).status == S.SUCCEEDED
    assert wait_callbacks(adapter, receiver, returned.order_no, {S.SUCCEEDED}) == {S.SUCCEEDED}

    def fast_forward() -> None:
        with pytest.raises(OSError) as caught:  # no HTTP answer at all: the process is gone
            client_of(crashable).control("POST", "/clock/advance", {"seconds": 3600})
        assert not isinstance(caught.value, AssertionError)

    kill_9_at(crashable, point, delayed.order_no, fast_forward)
    gw = crashable.start()

    assert wait_callbacks(adapter, receiver, delayed.order_no, {S.SUCCEEDED}) == {S.SUCCEEDED}
    assert wait_callbacks(adapter, receiver, returned.order_no, {S.RETURNED, S.SUCCEEDED}) == {S.SUCCEEDED, S.RETURNED}
    assert [p["status"] for p in gw.payouts("bankdirect", delayed.order_no)] == ["succeeded"]
    assert [p["status"] for p in gw.payouts("bankdirect", returned.order_no)] == ["returned"]
    assert adapter.query(delayed.order_no).status == S.SUCCEEDED
    assert adapter.query(returned.order_no).status == S.RETURNED
    # The receiver has them; the gateway records each delivery once the receiver's answer is back.
    assert len(gw.wait_callbacks("bankdirect", delayed.order_no, timeout=SETTLE_WITHIN)) == 1
    assert len(gw.wait_callbacks("bankdirect", returned.order_no, count=2, timeout=SETTLE_WITHIN)) == 2


def test_kill_9_during_a_burst_of_payouts_loses_none_and_pays_none_twice(
    crashable: GatewayProcess, receiver: Receiver
) -> None:
    """Six clients send payouts back to back (every sandbox behaviour, a third of the callbacks late) and the
    gateway is killed from outside once 30 have been answered; the clients keep sending until each has seen
    the gateway gone, so the kill lands in the middle of their traffic. After the restart every answer given
    before the kill still holds, every order ends in its one final payout, and every final state is called
    back."""
    client_of(crashable).script("bankdirect", callback_late_rate=0.33, callback_late_seconds=2.0, seed=5)
    suffixes = ["", "", "", "33", "44", "55", "66", "88", "11"]
    sent: dict[str, tuple[PayoutRequest, S]] = {}
    answered: dict[str, PayoutResult] = {}
    enough, killed = threading.Event(), threading.Event()
    lock = threading.Lock()

    def client() -> None:
        adapter = adapter_for(crashable, receiver)
        while not killed.is_set():
            with lock:
                suffix = suffixes[len(sent) % len(suffixes)]
                request = card_request(suffix)
                sent[request.order_no] = (request, ENDS_AS[suffix])
            try:
                result = adapter.submit(request)
            except ChannelError:
                if killed.is_set():
                    return  # the gateway is gone (or this answer was withheld): settled below
                continue
            with lock:
                answered[request.order_no] = result
                if len(answered) >= 30:
                    enough.set()

    with ThreadPoolExecutor(max_workers=6) as pool:
        clients = [pool.submit(client) for _ in range(6)]
        try:
            assert enough.wait(timeout=SETTLE_WITHIN)
            assert crashable.kill() == -signal.SIGKILL
        finally:
            killed.set()
        for c in clients:
            c.result(timeout=SETTLE_WITHIN)
    gw = crashable.start()

    adapter = adapter_for(crashable, receiver)
    settled = {order_no: settle_like_the_platform(adapter, gw, r, ends) for order_no, (r, ends) in sent.items()}
    book = gw.payouts("bankdirect")
    per_order = collections.Counter(p["order_no"] for p in book)
    assert set(per_order) == set(sent) and set(per_order.values()) == {1}  # one payout per order number
    by_order = {p["order_no"]: p for p in book}
    for order_no, before in answered.items():  # nothing the gateway told us before the kill was forgotten
        assert by_order[order_no]["reference"] == before.channel_reference
    for order_no, result in settled.items():
        ends = sent[order_no][1]
        assert by_order[order_no]["status"] == str(result.status) == str(ends)
        assert wait_callbacks(adapter, receiver, order_no, CALLBACKS_FOR[ends]) == CALLBACKS_FOR[ends], order_no


def test_the_book_is_wal_with_full_sync_and_a_failed_decision_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "book.sqlite3")
    assert (store.pragma("journal_mode"), store.pragma("synchronous")) == ("wal", 2)  # 2 = FULL
    with pytest.raises(RuntimeError, match="half a decision"), store.transaction():
        store.bump_attempt("bankdirect", "O1")
        with store.transaction():  # nested: joins the outer transaction
            store.save_script("bankdirect", {"maintenance": True})
        raise RuntimeError("half a decision")
    assert store.script("bankdirect") == {}
    assert store.bump_attempt("bankdirect", "O1") == 1
