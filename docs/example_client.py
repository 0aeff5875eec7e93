"""An example partner client for the withdrawal platform, standard library only (Python 3.10+).

Webhooks (docs/webhooks.md): ``verify_webhook`` checks a delivery's signature and age and returns the event;
``WebhookReceiver`` is a complete receiver (an http.server handler) that verifies, de-duplicates by event id and
answers 2xx only once the event is stored. Run one for a quick look:

    python docs/example_client.py serve --secret whsec_... --port 8787

The test suite (tests/test_webhooks*.py) verifies every delivery it receives with this file.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SIGNATURE_HEADER = "Webhook-Signature"
ID_HEADER = "Webhook-Id"


class WebhookVerificationError(Exception):
    """The delivery is not from the platform (bad or missing signature) or is too old to trust (replayed)."""


Headers = Mapping[str, str] | Message  # a dict, a framework's headers, or http.server's self.headers


def _header(headers: Headers, name: str) -> str:
    """A header by name, whatever the case (http.server's headers, a dict, a framework's request.headers)."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    if value is None:
        raise WebhookVerificationError(f"missing {name} header")
    return value


def verify_webhook(
    secret: str, headers: Headers, body: bytes, tolerance: int = 300, now: float | None = None
) -> dict[str, Any]:
    """The event (the parsed JSON body) if the delivery is authentic and fresh; WebhookVerificationError if not.

    1. Read ``Webhook-Signature: t=<unix seconds>,v1=<hex>`` (there may be several ``v1`` while a secret is
       rotated; one matching is enough).
    2. Compute HMAC-SHA256, keyed with the endpoint's secret (the whole ``whsec_…`` string, UTF-8), of the bytes
       ``<t>.`` followed by the raw body exactly as received (do not re-serialise the JSON).
    3. Compare it in constant time with each ``v1``.
    4. Refuse a timestamp more than ``tolerance`` seconds from now (a replayed old delivery).
    5. Check that ``Webhook-Id`` equals the body's ``id``; de-duplicate by it (the same event may come twice).
    """
    if isinstance(body, str):
        body = body.encode()
    timestamp = None
    signatures = []
    for item in _header(headers, SIGNATURE_HEADER).split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookVerificationError("malformed Webhook-Signature header")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise WebhookVerificationError("signature does not match")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(f"timestamp {timestamp} is outside the {tolerance} s tolerance")
    try:
        event = json.loads(body)
    except ValueError:
        raise WebhookVerificationError("body is not JSON") from None
    if not isinstance(event, dict) or event.get("id") != _header(headers, ID_HEADER):
        raise WebhookVerificationError("Webhook-Id does not match the event id")
    return event


class EventStore:
    """Events by id, each kept once: what a receiver's database table with a unique event id does."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: dict[str, dict[str, Any]] = {}
        self.duplicates = 0

    def add(self, event: dict[str, Any]) -> bool:
        """True the first time an event id is seen; False for a repeat (already handled: answer 2xx again)."""
        with self._lock:
            if event["id"] in self.events:
                self.duplicates += 1
                return False
            self.events[event["id"]] = event
            return True


class WebhookReceiver(BaseHTTPRequestHandler):
    """POST handler: verify, de-duplicate, store, then 200. 400 for a delivery that does not verify (the
    platform retries it, but a forged one will never verify). Configure with ``WebhookReceiver.configured``."""

    secret = ""
    store: EventStore
    on_event: Callable[[dict[str, Any]], None] | None = None

    @classmethod
    def configured(
        cls, secret: str, store: EventStore, on_event: Callable[[dict[str, Any]], None] | None = None
    ) -> type[WebhookReceiver]:
        return type("ConfiguredWebhookReceiver", (cls,), {"secret": secret, "store": store, "on_event": on_event})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            event = verify_webhook(self.secret, self.headers, body)
        except WebhookVerificationError as exc:
            self._answer(400, str(exc))
            return
        if self.store.add(event) and self.on_event is not None:
            self.on_event(event)
        self._answer(200, "ok")

    def _answer(self, status: int, text: str) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="receive webhooks and print each verified event once")
    serve.add_argument("--secret", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8787)
    args = parser.parse_args()
    store = EventStore()
    handler = WebhookReceiver.configured(args.secret, store, lambda e: print(json.dumps(e, ensure_ascii=False)))
    server = ThreadingHTTPServer((args.host, args.port), handler)
    print(f"listening on http://{args.host}:{args.port}/ (Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


if __name__ == "__main__":
    main()
