"""A partner API client in the Python standard library only: Bearer key, optional request signing, Idempotency-Key.

    from api_client import ApiClient
    client = ApiClient("https://pay.example.com", "sk_3f9a1c2e_…", signing_secret="ss_…")  # secret: if signing is on
    status, wallet = client.get("/api/v1/wallet")
    status, withdrawal = client.post("/api/v1/withdrawals", {"amount": 10000, "payout_account": 7},
                                     idempotency_key="order-2026-0001")

Signing (docs/api.md, "Request signing"): for every request the client sends

    X-Kamen-Timestamp: unix seconds now
    X-Kamen-Nonce:     a fresh random nonce (never reused)
    X-Kamen-Signature: v1=hex(HMAC-SHA256(signing_secret, METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body))))

over the exact bytes it sends. ``python api_client.py BASE_URL KEY [SIGNING_SECRET]`` prints the wallet.
tests/test_api_client_live.py runs this file against a live server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sys
import time
import urllib.error
import urllib.request
from typing import Any


def string_to_sign(method: str, path_and_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    return "\n".join([method.upper(), path_and_query, timestamp, nonce, hashlib.sha256(body).hexdigest()])


def sign(
    signing_secret: str,
    method: str,
    path_and_query: str,
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The three signature headers for one request (``timestamp`` and ``nonce`` are for tests: leave them out)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_urlsafe(18)  # 24 characters of A-Z a-z 0-9 _ -
    message = string_to_sign(method, path_and_query, ts, nonce, body)
    digest = hmac.new(signing_secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return {"X-Kamen-Timestamp": ts, "X-Kamen-Nonce": nonce, "X-Kamen-Signature": f"v1={digest}"}


class ApiClient:
    def __init__(self, base_url: str, api_key: str, *, signing_secret: str | None = None, timeout: float = 10) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.signing_secret = signing_secret
        self.timeout = timeout

    def request(
        self,
        method: str,
        path_and_query: str,
        body: Any = None,
        *,
        idempotency_key: str | None = None,
        language: str = "en",
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request; answer ``(status, parsed JSON)`` for success and for the API's error envelope alike."""
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            "Accept-Language": language,
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        if self.signing_secret:
            headers.update(sign(self.signing_secret, method, path_and_query, data))
        headers.update(extra_headers or {})
        request = urllib.request.Request(
            self.base_url + path_and_query, data=data if body is not None else None, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:  # 4xx / 5xx: the body is the error envelope
            return error.code, json.loads(error.read() or b"null")

    def get(self, path_and_query: str, **kwargs: Any) -> tuple[int, Any]:
        return self.request("GET", path_and_query, **kwargs)

    def post(self, path_and_query: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        return self.request("POST", path_and_query, body, **kwargs)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python api_client.py BASE_URL API_KEY [SIGNING_SECRET]")
    client = ApiClient(sys.argv[1], sys.argv[2], signing_secret=sys.argv[3] if len(sys.argv) > 3 else None)
    print(*client.get("/api/v1/wallet"))
