"""The tiny HTTP layer the protocol modules share: request/response values, JSON helpers, a nonce cache."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    raw_path: str  # path plus query string, exactly as sent (what signatures cover)
    headers: dict[str, str]  # lower-cased names
    body: bytes
    host: str = ""

    @property
    def path(self) -> str:
        return urlsplit(self.raw_path).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.raw_path).query, keep_blank_values=True))

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}"


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang_seconds: float = 0.0  # > 0: hold the connection this long, then close it without any answer

    @classmethod
    def withheld(cls, seconds: float) -> Response:
        return cls(status=0, hang_seconds=max(seconds, 0.01))


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, json_bytes(data), {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


class NonceCache:
    """Remembers nonces for ``ttl`` seconds so a replayed signed request is refused."""

    def __init__(self, ttl: float = 600.0) -> None:
        self.ttl = ttl
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, nonce: str) -> bool:
        now = time.time()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            expiry = self._seen.get(nonce)
            if expiry is not None and expiry > now:
                return False
            self._seen[nonce] = now + self.ttl
            return True
