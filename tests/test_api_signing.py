"""Request signing, per key: docs/api_client.py (standard library) against the running server, and every refusal —
missing headers, a wrong or malformed signature, a tampered body / path / method, an expired timestamp, a replayed
nonce — each a 401 with its own code that moves no money and is not counted as a failed login."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client

from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_signing_set
from config.errors import DomainError
from withdrawals.models import Withdrawal

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_764_410_000  # 2025-11-29T09:53:20Z, the frozen clock of the tests below


def api_client_module():
    """docs/api_client.py as a module (docs/ is not a package: it is what a partner copies)."""
    name = "docs_api_client"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / "api_client.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def signed_key(merchant_alice):
    raw = api_key_create(merchant=merchant_alice)
    secret = api_key_signing_set(merchant=merchant_alice, prefix=raw.split("_")[1], required=True)
    return raw, secret


def signed_request(client, raw, secret, method, path, body=b"", *, timestamp=NOW, nonce="nonce-0000000000001", **kw):
    headers = api_client_module().sign(secret, method, path, body, timestamp=timestamp, nonce=nonce)
    extra = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    extra.update(kw)
    if method == "GET":
        return client.get(path, HTTP_AUTHORIZATION=f"Bearer {raw}", **extra)
    return client.post(path, data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}", **extra)


def assert_refused(response, code):
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["action"]["code"] == "check_signature"
    return body["error"]["details"]


def test_the_docs_client_signs_against_the_live_server(live_server, merchant_alice, signed_key):
    raw, secret = signed_key
    docs = api_client_module()
    client = docs.ApiClient(live_server.url, raw, signing_secret=secret)
    status, wallet = client.get("/api/v1/wallet")
    assert status == 200 and wallet["currency"] == "CNY"
    status, accounts = client.get("/api/v1/payout-accounts")
    assert status == 200
    account = accounts["results"][0]["id"]
    status, created = client.post(
        "/api/v1/withdrawals", {"amount": 10_000, "payout_account": account}, idempotency_key="live-1"
    )
    assert status == 201, created
    status, fetched = client.get(f"/api/v1/withdrawals/{created['id']}")
    assert status == 200 and fetched["id"] == created["id"]
    status, listing = client.get("/api/v1/withdrawals?status=paid&limit=5")  # the query string is signed too
    assert status == 200 and [w["id"] for w in listing["results"]] == [created["id"]]
    status, cancel = client.post(f"/api/v1/withdrawals/{created['id']}/cancel")
    assert (status, cancel["error"]["code"]) == (409, "invalid_state")  # paid at once by the sandbox

    # the same key without its signature, or signed with another secret, is refused over the wire too
    unsigned = docs.ApiClient(live_server.url, raw)
    status, body = unsigned.get("/api/v1/wallet")
    assert (status, body["error"]["code"]) == (401, "signature_required")
    wrong = docs.ApiClient(live_server.url, raw, signing_secret="ss_not-the-secret")
    status, body = wrong.get("/api/v1/wallet")
    assert (status, body["error"]["code"]) == (401, "signature_invalid")
    assert Withdrawal.objects.count() == 1


def test_a_key_without_signing_ignores_signature_headers(merchant_alice):
    raw = api_key_create(merchant=merchant_alice)
    response = Client().get(
        "/api/v1/wallet", HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_X_KAMEN_SIGNATURE="v1=" + "0" * 64
    )
    assert response.status_code == 200


@time_machine.travel(NOW, tick=False)
def test_missing_headers_are_signature_required(signed_key):
    raw, secret = signed_key
    client = Client()
    details = assert_refused(client.get("/api/v1/wallet", HTTP_AUTHORIZATION=f"Bearer {raw}"), "signature_required")
    assert details == {"missing": ["X-Kamen-Timestamp", "X-Kamen-Nonce", "X-Kamen-Signature"]}
    only_signature = client.get(
        "/api/v1/wallet", HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_X_KAMEN_SIGNATURE="v1=" + "a" * 64
    )
    assert assert_refused(only_signature, "signature_required") == {"missing": ["X-Kamen-Timestamp", "X-Kamen-Nonce"]}
    assert signed_request(client, raw, secret, "GET", "/api/v1/wallet").status_code == 200


@time_machine.travel(NOW, tick=False)
def test_tampering_with_any_signed_part_is_signature_invalid(merchant_alice, signed_key):
    raw, secret = signed_key
    client = Client()
    account = merchant_alice.payout_accounts.get(is_default=True).pk
    body = json.dumps({"amount": 10_000, "payout_account": account}).encode()
    docs = api_client_module()

    def send(headers, *, data=body, path="/api/v1/withdrawals", key="tamper-1"):
        extra = {"HTTP_" + n.upper().replace("-", "_"): v for n, v in headers.items()}
        return client.post(
            path,
            data=data,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
            HTTP_IDEMPOTENCY_KEY=key,
            **extra,
        )

    good = docs.sign(secret, "POST", "/api/v1/withdrawals", body, timestamp=NOW, nonce="tamper-nonce-00001")
    # another amount under the signature of the first body
    other_body = json.dumps({"amount": 99_999, "payout_account": account}).encode()
    assert_refused(send(good, data=other_body), "signature_invalid")
    # the signature of another path, of another method, or made with another secret
    for headers in (
        docs.sign(secret, "POST", "/api/v1/withdrawals?x=1", body, timestamp=NOW, nonce="tamper-nonce-00002"),
        docs.sign(secret, "GET", "/api/v1/withdrawals", body, timestamp=NOW, nonce="tamper-nonce-00003"),
        docs.sign("ss_another", "POST", "/api/v1/withdrawals", body, timestamp=NOW, nonce="tamper-nonce-00004"),
    ):
        assert_refused(send(headers), "signature_invalid")
    # malformed headers
    for name, value in (
        ("X-Kamen-Signature", "sha256=" + "0" * 64),
        ("X-Kamen-Signature", "v1=XYZ"),
        ("X-Kamen-Nonce", "short"),
        ("X-Kamen-Nonce", "has spaces in it ....."),
        ("X-Kamen-Timestamp", "yesterday"),
    ):
        assert_refused(send({**good, name: value}), "signature_invalid")
    assert not Withdrawal.objects.exists()
    # the untouched request still goes through: none of the refusals above used up its nonce
    assert send(good).status_code == 201


def test_a_timestamp_outside_five_minutes_is_signature_expired(signed_key):
    raw, secret = signed_key
    client = Client()
    with time_machine.travel(NOW + 301, tick=False):
        details = assert_refused(signed_request(client, raw, secret, "GET", "/api/v1/wallet"), "signature_expired")
        assert details == {"timestamp": NOW, "server_time": NOW + 301, "window_seconds": 300}
    with time_machine.travel(NOW - 301, tick=False):  # a client clock ahead of ours
        assert_refused(signed_request(client, raw, secret, "GET", "/api/v1/wallet"), "signature_expired")
    with time_machine.travel(NOW + 300, tick=False):  # the edge of the window is still inside
        assert signed_request(client, raw, secret, "GET", "/api/v1/wallet").status_code == 200


@time_machine.travel(NOW, tick=False)
def test_a_replayed_nonce_is_refused_even_for_an_identical_request(merchant_alice, signed_key):
    raw, secret = signed_key
    client = Client()
    assert signed_request(client, raw, secret, "GET", "/api/v1/wallet", nonce="replay-nonce-000001").status_code == 200
    details = assert_refused(
        signed_request(client, raw, secret, "GET", "/api/v1/wallet", nonce="replay-nonce-000001"), "signature_replayed"
    )
    assert details == {"nonce": "replay-nonce-000001"}
    # a replayed withdrawal never reaches the service, whatever its Idempotency-Key
    account = merchant_alice.payout_accounts.get(is_default=True).pk
    body = json.dumps({"amount": 10_000, "payout_account": account}).encode()
    first = signed_request(
        client, raw, secret, "POST", "/api/v1/withdrawals", body, nonce="replay-nonce-000002", HTTP_IDEMPOTENCY_KEY="r1"
    )
    assert first.status_code == 201
    again = signed_request(
        client, raw, secret, "POST", "/api/v1/withdrawals", body, nonce="replay-nonce-000002", HTTP_IDEMPOTENCY_KEY="r2"
    )
    assert_refused(again, "signature_replayed")
    assert Withdrawal.objects.count() == 1
    # another key's nonces are its own
    other = api_key_create(merchant=merchant_alice)
    other_secret = api_key_signing_set(merchant=merchant_alice, prefix=other.split("_")[1], required=True)
    reply = signed_request(client, other, other_secret, "GET", "/api/v1/wallet", nonce="replay-nonce-000001")
    assert reply.status_code == 200


@time_machine.travel(NOW, tick=False)
def test_signature_failures_do_not_lock_the_key_out(settings, signed_key):
    """A wrong signature is the key holder's mistake, not a guessed key: it is not a failed login (axes)."""
    raw, secret = signed_key
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT + 2):
        headers = {"HTTP_X_KAMEN_TIMESTAMP": str(NOW), "HTTP_X_KAMEN_NONCE": f"wrong-nonce-{n:08d}"}
        response = client.get(
            "/api/v1/wallet", HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_X_KAMEN_SIGNATURE="v1=" + "0" * 64, **headers
        )
        assert_refused(response, "signature_invalid")
    assert signed_request(client, raw, secret, "GET", "/api/v1/wallet").status_code == 200


def test_the_secret_is_shown_once_and_stored_encrypted(merchant_alice):
    raw = api_key_create(merchant=merchant_alice)
    prefix = raw.split("_")[1]
    out = io.StringIO()
    call_command("api_key_signing", prefix, stdout=out)
    secret = out.getvalue().rsplit(": ", 1)[1].strip()
    assert secret.startswith("ss_") and len(secret) > 40
    key = ApiKey.objects.get(prefix=prefix)
    assert key.signing_required and key.signing_secret == secret
    stored = ApiKey.objects.filter(pk=key.pk).values_list("signing_secret", flat=True).query
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(*stored.sql_with_params())
        (column,) = cursor.fetchone()
    assert secret not in column  # ciphertext at rest
    out = io.StringIO()
    call_command("api_key_signing", prefix, "--off", stdout=out)
    key.refresh_from_db()
    assert not key.signing_required and key.signing_secret == ""
    with pytest.raises(DomainError) as refused:
        api_key_signing_set(merchant=merchant_alice, prefix="nope", required=True)
    assert refused.value.code == "not_found"
