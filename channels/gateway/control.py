"""The control API under /_control/: script faults, drive payouts, inspect the gateway's book, plant statement
differences. Test and demo use only; never part of a provider protocol."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .engine import PLANT_KINDS, Engine, NotFound, StateError
from .script import Script, ScriptError
from .web import Request, Response, json_response

PREFIX = "/_control"


class Control:
    def __init__(self, engine: Engine, notifier_resend: Any, data_dir: Path) -> None:
        self.engine = engine
        self.resend = notifier_resend
        self.data_dir = data_dir

    def handle(self, request: Request) -> Response | None:
        if not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
            return None
        try:
            return self._route(request, request.path[len(PREFIX) :] or "/")
        except (ScriptError, ValueError, TypeError, KeyError) as exc:
            return json_response(400, {"error": str(exc)})
        except NotFound as exc:
            return json_response(404, {"error": str(exc)})
        except StateError as exc:
            return json_response(409, {"error": str(exc)})

    def _route(self, request: Request, path: str) -> Response:
        m, q = request.method, request.query
        if path == "/health":
            return json_response(200, {"ok": True, "channels": sorted(self.engine.protocols)})
        if path == "/keys" and m == "GET":
            return json_response(200, json.loads((self.data_dir / "keys.json").read_text()))
        if path == "/reset" and m == "POST":
            self.engine.reset()
            return json_response(200, {"ok": True})
        if path == "/crash" and m == "GET":
            return json_response(200, {"armed": self.engine.crash.armed()})
        if path == "/crash" and m == "POST":  # test only: SIGKILL the gateway when a decision reaches the point
            body = request.json()
            self.engine.crash.arm(str(body["point"]), str(body.get("order_no", "")))
            return json_response(200, {"armed": self.engine.crash.armed()})
        if path == "/clock/advance" and m == "POST":
            self.engine.advance(float(request.json()["seconds"]))
            return json_response(200, {"ok": True})
        if path == "/payouts" and m == "GET":
            payouts = self.engine.store.payouts(channel=q.get("channel", ""), order_no=q.get("order_no", ""))
            return json_response(200, {"payouts": [p.as_dict() for p in payouts]})
        if path == "/attempts" and m == "GET":
            count = self.engine.store.attempts(q.get("channel", ""), q.get("order_no", ""))
            return json_response(200, {"attempts": count})
        if path == "/callbacks" and m == "GET":
            found = self.engine.store.callbacks(channel=q.get("channel", ""), order_no=q.get("order_no", ""))
            return json_response(200, {"callbacks": found})

        match = re.fullmatch(r"/callbacks/(\d+)/resend", path)
        if match and m == "POST":
            if self.engine.store.callback(int(match.group(1))) is None:
                raise NotFound("no such callback")
            self.resend(int(match.group(1)))
            return json_response(200, {"ok": True})

        match = re.fullmatch(r"/channels/([a-z]+)/script", path)
        if match:
            channel = self._channel(match.group(1))
            if m == "GET":
                return json_response(200, self.engine.script(channel).as_dict())
            body = request.json()
            merged = body if m == "PUT" else self.engine.script(channel).as_dict() | body
            script = Script.from_dict(merged)
            self.engine.save_script(channel, script)
            return json_response(200, script.as_dict())

        match = re.fullmatch(r"/payouts/([a-z]+)/([^/]+)/(confirm|expire|return|settle)", path)
        if match and m == "POST":
            channel, order_no, action = self._channel(match.group(1)), match.group(2), match.group(3)
            if action == "confirm":
                payout = self.engine.confirm(channel, order_no)
            elif action == "expire":
                payout = self.engine.expire(channel, order_no)
            elif action == "return":
                payout = self.engine.bank_return(channel, order_no, str(request.json().get("code", "")))
            else:
                payout = self.engine.settle(channel, order_no)
            return json_response(200, {"payout": payout.as_dict()})

        match = re.fullmatch(r"/statements/([a-z]+)/(\d{4}-\d{2}-\d{2})(/plants)?", path)
        if match:
            channel, date, plants = self._channel(match.group(1)), match.group(2), match.group(3)
            if not plants and m == "GET":
                return self._statement_csv(channel, date)
            if plants and m == "GET":
                return json_response(200, {"plants": self.engine.store.plants(channel, date)})
            if plants and m == "POST":
                return json_response(201, {"id": self._plant(channel, date, request.json())})
            if plants and m == "DELETE":
                self.engine.store.clear_plants(channel, date)
                return json_response(200, {"ok": True})
        return json_response(404, {"error": f"no control endpoint {m} {request.path}"})

    def _channel(self, name: str) -> str:
        if name not in self.engine.protocols:
            raise NotFound(f"unknown channel {name!r}; one of {sorted(self.engine.protocols)}")
        return name

    def _plant(self, channel: str, date: str, body: dict[str, Any]) -> int:
        kind = body.get("kind")
        if kind not in PLANT_KINDS:
            raise ValueError(f"kind must be one of {PLANT_KINDS}")
        order_no = str(body.get("order_no", ""))
        if kind != "add_unknown" and not order_no:
            raise ValueError(f"{kind} needs order_no")
        if kind == "alter_amount" and not isinstance(body.get("amount"), int):
            raise ValueError("alter_amount needs an integer amount (fen)")
        if kind == "alter_status" and not body.get("status"):
            raise ValueError("alter_status needs status (SUCCESS, FAILED, RETURNED, ...)")
        if kind == "add_unknown" and not order_no:
            order_no = "UNKNOWN-" + date.replace("-", "")
        return self.engine.store.add_plant(
            {
                "channel": channel,
                "date": date,
                "kind": kind,
                "order_no": order_no,
                "amount": body.get("amount"),
                "status": str(body.get("status", "")),
                "reference": str(body.get("reference", "")),
            }
        )

    def _statement_csv(self, channel: str, date: str) -> Response:
        content = self.engine.statement_csv(channel, date)
        return Response(200, content, {"Content-Type": "text/csv; charset=utf-8"})
