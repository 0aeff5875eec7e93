"""The channels under the simulation's control: the real adapters, the real gateway, a simulated network.

The platform's channel adapters (bank-direct HMAC, Alipay RSA2, WeChat Pay v3) are used as they are; only
their HTTP goes somewhere else: ``requests`` hands every request for ``http://gateway.sim`` to
``GatewayTransport``, which passes it — headers, signature, body — to the sandbox gateway's own protocol
handlers and engine (``channels.gateway.server.Gateway``), built in this process on a fresh data directory.
Signatures are made and checked, answers are signed and verified, timestamps are checked against the simulated
clock, exactly as between two processes.

What the network does to a request is drawn from the seed: delivered after a latency; lost before the gateway
(the caller times out); executed but its answer lost (the caller times out); delivered only after the caller
gave up; refused while the gateway is restarting; or the calling worker is killed while the request is at the
gateway. A worker waiting for an answer is parked (``simulation.kernel``) and resumed when it is due, so other
tasks interleave with it.

The gateway's outgoing callbacks go through ``SimNotifier`` (the gateway's notifier stand-in) to
``/callbacks/<code>/`` through Django's test client: lost, duplicated, late or out of order as the channel's
script says, retried on a non-2xx answer like the real notifier. The gateway's timers (delayed settlement,
planned bank returns, WeChat payee windows) fire as events; WeChat payees confirm (or never do) as the seed
says.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from channels.gateway.notifier import RETRY_DELAYS, Notifier, OutgoingCallback
from channels.gateway.script import Script
from channels.gateway.server import Gateway
from channels.gateway.web import Request, Response, json_response

from .faults import CHANNEL_CODES, FaultPlan
from .kernel import Kernel, Worker, WorkerKilled

if TYPE_CHECKING:
    from .observer import Observer

GATEWAY_HOST = "gateway.sim"
GATEWAY_URL = f"http://{GATEWAY_HOST}"
ORDER_NO = re.compile(r"WD\d{8}[0-9A-Fa-f]{12}")
CHANNELS = ("bankdirect", "alipay", "wechat")


def _channel_of(request: Request | None) -> str:
    if request is None:
        return ""
    if request.path.startswith("/bankdirect/"):
        return "bankdirect"
    if request.path.startswith("/alipay/"):
        return "alipay"
    return "wechat" if request.path.startswith("/v3/") else ""


def order_no_in(request: Request) -> str:
    found = ORDER_NO.search(request.raw_path) or ORDER_NO.search(request.body.decode("utf-8", "replace"))
    return found.group(0) if found else ""


# --- the network ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class NetOp:
    request: Request
    timeout: float
    fate: str
    order_no: str


class GatewayTransport(BaseAdapter):
    """A ``requests`` transport adapter for the simulated gateway host."""

    def __init__(self, network: Network) -> None:
        super().__init__()
        self.network = network

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None, **kwargs: Any
    ) -> requests.Response:
        split = urlsplit(request.url or "")
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        gateway_request = Request(
            method=request.method or "GET",
            raw_path=split.path + (f"?{split.query}" if split.query else ""),
            headers={k.lower(): v if isinstance(v, str) else v.decode() for k, v in request.headers.items()},
            body=bytes(body),  # type: ignore[arg-type]
            host=split.netloc,
        )
        read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
        answer = self.network.exchange(gateway_request, float(read_timeout or 10.0))
        response = requests.Response()
        response.status_code = answer.status
        response.headers = CaseInsensitiveDict(answer.headers)
        response._content = answer.body
        response.url = request.url or ""
        response.request = request
        response.encoding = "utf-8"
        response.reason = "OK" if answer.status < 400 else "Error"
        return response

    def close(self) -> None:
        pass


class Network:
    def __init__(self, *, kernel: Kernel, faults: FaultPlan, gateway: SimGateway, observer: Observer) -> None:
        self.kernel = kernel
        self.faults = faults
        self.gateway = gateway
        self.observer = observer
        self.transport = GatewayTransport(self)
        self._original_get_adapter: Any = None
        kernel.network = self

    def install(self) -> None:
        original = requests.Session.get_adapter
        self._original_get_adapter = original
        transport = self.transport

        def get_adapter(session: requests.Session, url: str) -> BaseAdapter:
            if url.lower().startswith(GATEWAY_URL):
                return transport
            return original(session, url)

        requests.Session.get_adapter = get_adapter  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._original_get_adapter is not None:
            requests.Session.get_adapter = self._original_get_adapter  # type: ignore[method-assign]

    # --- caller side (any thread) ------------------------------------------------------------------------
    def exchange(self, request: Request, timeout: float) -> Response:
        op = NetOp(request, timeout, self._fate(request), order_no_in(request))
        if op.fate != "ok":
            self.kernel.count_fault(f"network_{op.fate}")
            self.observer.trace_order(op.order_no, f"network: {op.fate} for {request.method} {request.path}")
        worker = self.kernel.current_worker()
        if worker is not None:
            reply = worker.wait(op)
            assert isinstance(reply, Response)
            return reply
        return self._synchronous(op)

    def _fate(self, request: Request) -> str:
        if self.gateway.down:
            return "refused"
        f = self.faults
        roll = f.dice.stream("network").random()
        for fate, rate in (
            ("request_lost", f.request_lost_rate),
            ("answer_lost", f.answer_lost_rate),
            ("slow_request", f.slow_request_rate),
            ("killed_in_flight", f.kill_in_flight_rate),
        ):
            if roll < rate:
                if fate == "killed_in_flight" and self.kernel.current_worker() is None:
                    return "ok"  # only a worker can be killed; the web process answering a callback is not
                return fate
            roll -= rate
        return "ok"

    def _latency(self, request: Request | None = None) -> float:
        rng = self.faults.dice.stream("latency")
        slow = self.gateway.slowness.get(_channel_of(request)) if request is not None else None
        if slow and rng.random() < 0.8:  # a slow spell: answers take seconds, some close to the timeout
            return rng.uniform(*slow)
        return rng.uniform(0.005, 0.12) if rng.random() < 0.97 else rng.uniform(0.5, 4.0)

    def _synchronous(self, op: NetOp) -> Response:
        """A channel call from the scheduler's own thread (operations following a statement): no one to park,
        so the exchange happens now; the faults still apply."""
        if op.fate in ("refused",):
            raise requests.ConnectionError(f"connection to {GATEWAY_HOST} refused")
        if op.fate == "request_lost":
            raise requests.ReadTimeout(f"{GATEWAY_HOST} read timed out (request lost)")
        answer = self.gateway.dispatch(op.request)
        if op.fate in ("answer_lost", "slow_request") or answer.hang_seconds:
            raise requests.ReadTimeout(f"{GATEWAY_HOST} read timed out")
        return answer

    # --- scheduler side ----------------------------------------------------------------------------------
    def parked(self, worker: Worker, op: NetOp) -> None:
        """A worker is waiting for ``op``: schedule what the network does with it. Whatever happens, the caller
        hears something by its timeout: an answer, a refusal, or the timeout itself."""
        s = self.kernel.scheduler
        timeout = op.timeout
        out = self._latency(op.request)

        def resume(reply: Any) -> Callable[[], None]:
            return lambda: self.kernel.resume(worker, reply)

        def timed_out() -> requests.ReadTimeout:
            return requests.ReadTimeout(f"{GATEWAY_HOST} read timed out after {timeout:g}s")

        if op.fate == "refused":
            s.after(0.002, resume(requests.ConnectionError(f"connection to {GATEWAY_HOST} refused")), "net refused")
            return
        if op.fate == "request_lost":
            s.after(timeout, resume(timed_out()), "net timeout")
            return
        if op.fate == "slow_request" or out >= timeout:
            # The request reaches the gateway only after the caller gave up: executed, answer to no one.
            s.after(timeout, resume(timed_out()), "net timeout")
            late = max(out, timeout + self.faults.uniform("network", 0.5, 90.0))
            s.after(late, lambda: self._deliver_late(op), "net late delivery")
            return
        left = timeout - out  # what the caller still waits once the request has arrived

        def arrive() -> None:
            answer = self.gateway.dispatch(op.request) if not self.gateway.down else None
            back = self._latency(op.request)
            if answer is None:  # the gateway went down while the request travelled
                s.after(0.001, resume(requests.ConnectionError("connection reset by peer")), "net reset")
            elif op.fate == "killed_in_flight":
                s.after(min(back, left), resume(WorkerKilled("network.killed_in_flight")), "net kill")
            elif op.fate == "answer_lost":
                s.after(left, resume(timed_out()), "net lost")
            elif answer.hang_seconds:
                # The gateway holds the line, then hangs up without a word (or the client times out first).
                if answer.hang_seconds < left:
                    error: Exception = requests.ConnectionError("remote end closed connection without response")
                    s.after(answer.hang_seconds, resume(error), "net hang")
                else:
                    s.after(left, resume(timed_out()), "net hang")
            elif back >= left:
                s.after(left, resume(timed_out()), "net slow answer")  # the answer arrives after the timeout
            else:
                s.after(back, resume(answer), "net answer")

        s.after(out, arrive, "net arrive")

    def _deliver_late(self, op: NetOp) -> None:
        if not self.gateway.down:
            self.gateway.dispatch(op.request)  # nobody waits for this answer any more


# --- the gateway ------------------------------------------------------------------------------------------
class SimGateway:
    """The sandbox gateway's protocol handlers and engine, in this process, driven by simulated time."""

    def __init__(self, *, kernel: Kernel, faults: FaultPlan, data_dir: Path, web: Any, observer: Observer) -> None:
        self.kernel = kernel
        self.faults = faults
        self.observer = observer
        self.data_dir = data_dir
        self.gateway = Gateway(data_dir, GATEWAY_URL)
        self.engine = self.gateway.engine
        self.store = self.gateway.store
        self.notifier = SimNotifier(self, web)
        self.gateway.notifier = self.notifier  # type: ignore[assignment]
        self.engine.notifier = self.notifier  # type: ignore[assignment]
        for route in self.gateway.routes:
            if hasattr(route, "resend"):
                route.resend = self.notifier.resend
        self.down = False
        self._tick_at: Any = None
        self._payees_seen: set[str] = set()
        self.scripts: dict[str, dict[str, Any]] = {}
        self.slowness: dict[str, tuple[float, float] | None] = {}  # per channel: answer latency range in a slow spell
        self._script_seq = 0

    def adapter_configs(self) -> dict[str, dict[str, Any]]:
        index = json.loads((self.data_dir / "keys.json").read_text())
        return {name: dict(config) for name, config in index["adapters"].items()}

    # --- requests ----------------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        try:
            response = self.gateway.dispatch(request)
        except Exception as exc:  # what the gateway's HTTP handler does with its own bugs
            self.observer.finding(
                "gateway_error",
                f"the sandbox gateway raised on {request.method} {request.path}: {exc!r}",
                detail=traceback.format_exc(),
            )
            response = json_response(500, {"error": f"gateway bug: {exc}"})
        self.after_change()
        return response

    # --- time ----------------------------------------------------------------------------------------------
    def after_change(self) -> None:
        """Schedule the next timer of the gateway's book and notice new payouts waiting for a WeChat payee."""
        with self.store.lock:
            row = self.store.db.execute(
                "SELECT MIN(t) FROM (SELECT MIN(due_at) AS t FROM payouts UNION ALL SELECT MIN(return_at) FROM payouts)"
            ).fetchone()
            awaiting = self.store.db.execute(
                "SELECT channel, order_no FROM payouts WHERE status = 'awaiting_payee'"
            ).fetchall()
        due = row[0] if row else None
        if due is not None:
            when = max(datetime.fromtimestamp(due, UTC), self.kernel.clock.now)
            if self._tick_at is None or when < self._tick_at:
                self._tick_at = when
                self.kernel.scheduler.at(when, self._tick, "gateway tick")
        for channel, order_no in awaiting:
            if order_no in self._payees_seen:
                continue
            self._payees_seen.add(order_no)
            if self.faults.roll("payee", self.faults.payee_unclaimed_rate):
                self.kernel.count_fault("payee_never_confirms")
                self.observer.trace_order(order_no, "payee will never confirm (expires after 24 h)")
                continue
            delay = self.faults.dice.expo("payee", 1800.0)
            self.kernel.scheduler.after(min(delay, 20 * 3600), partial(self._confirm, channel, order_no), "payee")

    def _tick(self) -> None:
        self._tick_at = None
        if self.down:
            return  # a stopped gateway settles nothing; it catches up when it is back
        self.engine.tick()
        self.after_change()

    def _confirm(self, channel: str, order_no: str) -> None:
        from channels.gateway.engine import StateError

        if self.down:
            self.kernel.scheduler.after(300, lambda: self._confirm(channel, order_no))
            return
        try:
            self.engine.confirm(channel, order_no)
            self.observer.trace_order(order_no, "payee confirmed in WeChat")
        except StateError:
            pass
        self.after_change()

    # --- episodes ------------------------------------------------------------------------------------------
    def plan_episodes(self, *, start: Any, end: Any, rush: Callable[[], None] | None = None) -> None:
        """Restarts, unannounced maintenance, flapping spells and changes of each channel's behaviour over the
        run; a flapping spell comes with a rush of withdrawals more often than not (``rush``)."""
        f = self.faults
        for channel in CHANNELS:
            self.set_script(channel, self._weather(channel))

        def times(stream: str, per_day: float) -> list[datetime]:
            """Episode start times: one stream per kind and channel, so a shorter run is a prefix of a longer one."""
            out: list[datetime] = []
            t = start
            while per_day > 0:
                t = t + timedelta(seconds=f.dice.expo(stream, 86400 / per_day))
                if t >= end:
                    return out
                out.append(t)
            return out

        for t in times("episodes:restart", f.restarts_per_day):
            self.kernel.scheduler.at(
                t, partial(self._restart, f.uniform("episodes:restart:length", 20, 300)), "restart"
            )
        for channel in CHANNELS:
            for t in times(f"episodes:maintenance:{channel}", f.maintenance_per_day):
                length = f.uniform(f"episodes:maintenance:{channel}:length", 300, 2700)
                self.kernel.scheduler.at(t, partial(self._maintenance, channel, length), "maintenance")
            for t in times(f"episodes:weather:{channel}", f.weather_changes_per_day):
                self.kernel.scheduler.at(t, partial(self._change_weather, channel), "weather")
            for t in times(f"episodes:flap:{channel}", f.flaps_per_day):
                length = f.uniform(f"episodes:flap:{channel}:length", 900, 3600)
                self.kernel.scheduler.at(t, partial(self._flap, channel, length), "flap")
                if rush is not None and f.roll(f"episodes:flap:{channel}:rush", 0.6):
                    when = t + timedelta(seconds=f.uniform(f"episodes:flap:{channel}:rush", 0, length / 2))
                    self.kernel.scheduler.at(when, rush, "rush")

    def _change_weather(self, channel: str) -> None:
        self.set_script(channel, self._weather(channel))
        self._slow_spell(channel)

    def _weather(self, channel: str) -> dict[str, Any]:
        f, rng = self.faults, self.faults.dice.stream("weather")
        codes = CHANNEL_CODES[channel]
        rates = {
            "busy": f.busy_max,
            "rate_limited": f.rate_limited_max,
            "definite_failure": f.definite_failure_max,
            "funding": f.funding_max,
            "reroute": f.reroute_max,
        }
        failure_rates = {codes[k]: round(rng.uniform(0, m), 4) for k, m in rates.items() if k in codes and m > 0}
        return {
            "failure_rates": {k: v for k, v in failure_rates.items() if v > 0},
            "timeout_rate": round(rng.uniform(0, f.gateway_timeout_max), 4),
            "drop_rate": round(rng.uniform(0, f.gateway_drop_max), 4),
            "hang_seconds": rng.choice([2.0, 5.0, 30.0]),
            "return_rate": round(rng.uniform(0, f.return_rate_max), 4),
            "return_after_seconds": rng.choice([600.0, 3600.0, 6 * 3600.0, 30 * 3600.0]),
            "callback_lost_rate": round(rng.uniform(0, f.callback_lost_max), 4),
            "callback_duplicate_rate": round(rng.uniform(0, f.callback_duplicate_max), 4),
            "callback_late_rate": round(rng.uniform(0, f.callback_late_max), 4),
            "callback_late_seconds": rng.choice([3.0, 30.0, 240.0, 900.0]),
            "callback_out_of_order_rate": round(rng.uniform(0, f.callback_out_of_order_max), 4),
        }

    def _slow_spell(self, channel: str) -> None:
        rng = self.faults.dice.stream("weather")
        slow = (1.0, rng.choice([3.0, 6.0, 9.5])) if rng.random() < self.faults.slow_spell_rate else None
        if slow:
            self.kernel.count_fault(f"slow_spell:{channel}")
        self.slowness[channel] = slow

    def set_script(self, channel: str, values: dict[str, Any]) -> None:
        merged = {**self.scripts.get(channel, {}), **values}
        self._script_seq += 1
        merged["seed"] = self.faults.dice.randint("weather", 0, 2**31) + self._script_seq
        self.scripts[channel] = merged
        self.engine.save_script(channel, Script.from_dict(merged))

    def _maintenance(self, channel: str, seconds: float) -> None:
        self.kernel.count_fault(f"maintenance:{channel}")
        self.observer.trace(None, f"{channel} unannounced maintenance for {seconds:.0f}s")
        self.set_script(channel, {"maintenance": True})
        self.kernel.scheduler.after(seconds, lambda: self.set_script(channel, {"maintenance": False}), "maint end")

    def _flap(self, channel: str, seconds: float) -> None:
        """A sick channel: slow, often "busy", flapping in and out of maintenance every few seconds to minutes."""
        self.kernel.count_fault(f"flapping:{channel}")
        self.observer.trace(None, f"{channel} flaps for {seconds:.0f}s")
        rng = self.faults.dice.stream("flap")
        before = {k: self.scripts.get(channel, {}).get(k) for k in ("failure_rates", "drop_rate")}
        busy = CHANNEL_CODES[channel]["busy"]
        # Busy answers, and requests dropped before they execute (the caller times out; a query finds nothing).
        self.set_script(
            channel,
            {"failure_rates": {busy: round(rng.uniform(0.1, 0.4), 3)}, "drop_rate": round(rng.uniform(0.05, 0.3), 3)},
        )
        self.slowness[channel] = (1.0, 9.5)
        end = self.kernel.clock.now + timedelta(seconds=seconds)
        t, on = self.kernel.clock.now, False
        while t < end:
            t += timedelta(seconds=rng.uniform(3, 90))
            on = not on
            self.kernel.scheduler.at(min(t, end), partial(self.set_script, channel, {"maintenance": on}), "flip")

        def over() -> None:
            restore = {"failure_rates": before["failure_rates"] or {}, "drop_rate": before["drop_rate"] or 0.0}
            self.set_script(channel, {**restore, "maintenance": False})
            self.slowness[channel] = None

        self.kernel.scheduler.at(end + timedelta(seconds=1), over, "flap end")

    def _restart(self, seconds: float) -> None:
        """The gateway process goes away: connections are refused, its in-memory callback queue is lost."""
        self.kernel.count_fault("gateway_restart")
        lost = self.notifier.drop_scheduled()
        if lost:
            self.kernel.count_fault("callbacks_lost_in_restart")
        self.down = True

        def back() -> None:
            self.down = False
            if hasattr(Notifier, "resume"):  # the real gateway resumes what its book still owes
                self.notifier.resume()
            self._tick()

        self.kernel.scheduler.after(seconds, back, "gateway back")


# --- the gateway's notifier -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Recorded:
    callback_id: int
    channel: str
    due: float
    fault: str


class SimNotifier:
    """The gateway notifier's stand-in: the same fault kinds from the channel's script, decided by the seed,
    delivered through the platform's callback view as simulated-time events. It speaks both notifier
    interfaces the engine has had: ``enqueue`` (record and send at once) and ``record`` inside the engine's
    transaction + ``schedule`` after its commit (+ ``resume`` after a restart: what the book still owes)."""

    def __init__(self, gateway: SimGateway, web: Any) -> None:
        self.gateway = gateway
        self.web = web
        self._generation = 0
        self._held: dict[str, tuple[int, int]] = {}  # channel -> (callback id, generation)
        self._pending = 0
        store = gateway.store
        with store.lock:
            columns = {row[1] for row in store.db.execute("PRAGMA table_info(callbacks)")}
        self._due_column = "due_at" in columns
        self._retry_at = "retry_at" in inspect.signature(store.record_delivery).parameters

    # --- the notifier interface ----------------------------------------------------------------------------
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def clear(self) -> None:
        self.drop_scheduled()

    def enqueue(self, callback: OutgoingCallback, script: Script) -> int:
        recorded = self.record(callback, script)
        if recorded is not None:
            self.schedule(recorded)
            return recorded.callback_id
        return 0

    def record(self, callback: OutgoingCallback, script: Script) -> Recorded | None:
        kernel, dice = self.gateway.kernel, self.gateway.faults.dice
        if dice.roll("callbacks", script.callback_lost_rate):
            fault = "lost"
        elif dice.roll("callbacks", script.callback_out_of_order_rate):
            fault = "out_of_order"
        elif dice.roll("callbacks", script.callback_late_rate):
            fault = "late"
        else:
            fault = ""
        duplicate = fault != "lost" and dice.roll("callbacks", script.callback_duplicate_rate)
        if fault:
            kernel.count_fault(f"callback_{fault}")
        if duplicate:
            kernel.count_fault("callback_duplicate")
            fault = f"{fault}+duplicate" if fault else "duplicate"
        now = kernel.clock.now.timestamp()
        status = "lost" if fault == "lost" else ("pending" if callback.url else "no_url")
        due = now + (script.callback_late_seconds if fault.startswith(("late", "out_of_order")) else 0.0)
        row: dict[str, Any] = {
            "channel": callback.channel,
            "order_no": callback.order_no,
            "notify_id": callback.notify_id,
            "status": status,
            "url": callback.url,
            "headers": json.dumps(callback.headers),
            "body": callback.body,
            "fault": fault,
            "created_at": now,
        }
        if self._due_column:
            row["due_at"] = due if status == "pending" else None
        callback_id = self.gateway.store.insert_callback(row)
        if fault:
            self.gateway.observer.trace_order(callback.order_no, f"callback {callback.notify_id[:14]}: {fault}")
        return Recorded(callback_id, callback.channel, due, fault) if status == "pending" else None

    def schedule(self, recorded: Any) -> None:
        now = self.gateway.kernel.clock.now.timestamp()
        delay = max(0.0, recorded.due - now)
        held = self._held.pop(recorded.channel, None)
        if held is not None and held[1] == self._generation:
            self._send_later(held[0], delay + 0.2)  # the held-back one goes out right after this one
        self._send_later(
            recorded.callback_id, delay, held_key=recorded.channel if recorded.fault.startswith("out_of_order") else ""
        )
        if recorded.fault.endswith("duplicate"):
            self._send_later(recorded.callback_id, delay + 0.1)

    def resume(self) -> int:
        """After a restart: every callback the book still owes, at its due time or now."""
        store = self.gateway.store
        with store.lock:
            rows = store.db.execute("SELECT * FROM callbacks WHERE status = 'pending' ORDER BY id").fetchall()
        now = self.gateway.kernel.clock.now.timestamp()
        for r in rows:
            due = r["due_at"] if self._due_column and r["due_at"] is not None else r["created_at"]
            attempt = min(len(json.loads(r["delivery_log"])), len(RETRY_DELAYS))
            self._send_later(r["id"], max(0.0, due - now), attempt)
        return len(rows)

    def resend(self, callback_id: int) -> None:
        self._send_later(callback_id, 0.0)

    # --- simulation ----------------------------------------------------------------------------------------
    def drop_scheduled(self) -> int:
        """The process died: whatever it had queued in memory is gone."""
        self._generation += 1
        self._held.clear()
        lost, self._pending = self._pending, 0
        return lost

    def _send_later(self, callback_id: int, delay: float, attempt: int = 0, held_key: str = "") -> None:
        generation = self._generation
        self._pending += 1
        if held_key:
            self._held[held_key] = (callback_id, generation)

        def deliver() -> None:
            if generation != self._generation:
                return
            self._pending -= 1
            if held_key:
                if self._held.get(held_key) != (callback_id, generation):
                    return  # already sent right after the callback that overtook it
                del self._held[held_key]
            self._deliver(callback_id, attempt)

        self.gateway.kernel.scheduler.after(delay, deliver, "callback")

    def _deliver(self, callback_id: int, attempt: int) -> None:
        store = self.gateway.store
        callback = store.callback(callback_id)
        if callback is None:
            return
        now = self.gateway.kernel.clock.now.timestamp()
        entry: dict[str, object] = {"at": now, "attempt": attempt + 1}
        if self.gateway.down:
            delivered = False
            entry["error"] = "gateway down"
        else:
            status = self.web.post_callback(callback["url"], callback["headers"], callback["body"].encode())
            entry["status"] = status
            delivered = 200 <= status < 300
        retry = not delivered and attempt < len(RETRY_DELAYS)
        if self._retry_at:
            store.record_delivery(callback_id, entry, delivered, now + RETRY_DELAYS[attempt] if retry else None)
        else:
            store.record_delivery(callback_id, entry, delivered)
            if not delivered and not retry:
                store.set_callback_status(callback_id, "failed")
        if retry:
            self._send_later(callback_id, RETRY_DELAYS[attempt], attempt + 1)
