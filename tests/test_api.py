"""The partner API as a plain HTTP client sees it."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.services import api_key_create
from tests.factories import ALICE_CREDIT, card_for
from wallets.models import Transfer
from wallets.selectors import wallet_balances
from withdrawals.models import Withdrawal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice_api(merchant_alice):
    key = api_key_create(merchant=merchant_alice)
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


def post(client, body, key="idem-1", raw=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(
        "/api/v1/withdrawals",
        data=raw if raw is not None else json.dumps(body),
        content_type="application/json",
        **headers,
    )


def account_id(merchant):
    return merchant.payout_accounts.get(is_default=True).pk


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"] and "details" in body["error"]


def test_requires_a_valid_bearer_key(merchant_alice):
    assert_error(Client().get("/api/v1/wallet"), 401, "authentication_failed")
    assert_error(Client(HTTP_AUTHORIZATION="Bearer sk_nope_nope").get("/api/v1/wallet"), 401, "authentication_failed")
    assert_error(Client(HTTP_AUTHORIZATION="Basic abc").get("/api/v1/wallet"), 401, "authentication_failed")


def test_wallet(alice_api):
    assert alice_api.get("/api/v1/wallet").json() == {
        "currency": "CNY",
        "available": ALICE_CREDIT,
        "held": 0,
        "pending": 0,
        "reserve": 0,
    }


def test_create_get_list_and_replay(alice_api, merchant_alice):
    r = post(alice_api, {"amount": 10_000, "payout_account": account_id(merchant_alice), "speed": "standard"})
    assert r.status_code == 201
    body = r.json()
    for field in ("id", "status", "amount", "fee", "net_amount", "payout_account", "created_at"):
        assert field in body
    assert body["amount"] == body["fee"] + body["net_amount"] == 10_000
    again = post(alice_api, {"amount": 10_000, "payout_account": account_id(merchant_alice), "speed": "standard"})
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    detail = alice_api.get(f"/api/v1/withdrawals/{body['id']}").json()
    assert detail["status"] == "paid"
    # The chosen channel's name and arrival only: how it was chosen stays in the admin.
    assert set(detail["channel"]) == {"name", "expected_arrival_seconds"}
    assert [e["to"] for e in detail["events"]][-1] == "paid"
    listing = alice_api.get("/api/v1/withdrawals").json()
    assert [w["id"] for w in listing["results"]] == [body["id"]]
    assert alice_api.get("/api/v1/withdrawals?status=failed").json()["results"] == []


def test_same_key_different_body_is_refused(alice_api, merchant_alice):
    post(alice_api, {"amount": 10_000, "payout_account": account_id(merchant_alice)})
    r = post(alice_api, {"amount": 20_000, "payout_account": account_id(merchant_alice)})
    assert_error(r, 409, "idempotency_key_reused")


def test_missing_idempotency_key(alice_api, merchant_alice):
    assert_error(
        post(alice_api, {"amount": 10_000, "payout_account": account_id(merchant_alice)}, key=None),
        400,
        "idempotency_key_required",
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": -100}, 400, "invalid_amount"),
        ({"amount": 0}, 400, "invalid_amount"),
        ({"amount": 100.5}, 400, "invalid_request"),
        ({"amount": "10000"}, 400, "invalid_request"),
        ({"amount": True}, 400, "invalid_request"),
        ({"amount": 10**30}, 400, "invalid_amount"),
        ({"amount": 10_000, "speed": "warp"}, 400, "invalid_request"),
        ({"amount": 10_000, "fee_override": 0}, 400, "invalid_request"),
        ({"amount": 10_000, "payout_account": "mallory"}, 400, "invalid_request"),
        ({"amount": 10_000, "payout_account": 10**12}, 422, "payout_account_invalid"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_moves_no_money(alice_api, merchant_alice, body, status, code):
    body = {"payout_account": account_id(merchant_alice), **body}
    transfers = Transfer.objects.count()
    assert_error(post(alice_api, body), status, code)
    assert wallet_balances(merchant_id=merchant_alice.pk).available == ALICE_CREDIT
    assert Transfer.objects.count() == transfers and not Withdrawal.objects.exists()


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", '"text"', ""])
def test_malformed_bodies(alice_api, raw):
    r = post(alice_api, None, raw=raw)
    assert_error(r, 400, "invalid_request")


def test_someone_elses_payout_account_and_withdrawal(alice_api, merchant_alice, merchant_mallory):
    assert_error(
        post(alice_api, {"amount": 10_000, "payout_account": account_id(merchant_mallory)}),
        422,
        "payout_account_invalid",
    )
    mallory = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_mallory)}")
    r = post(mallory, {"amount": 10_000, "payout_account": account_id(merchant_mallory)}, key="m-1")
    wid = r.json()["id"]
    assert_error(alice_api.get(f"/api/v1/withdrawals/{wid}"), 404, "not_found")
    assert_error(alice_api.post(f"/api/v1/withdrawals/{wid}/cancel"), 404, "not_found")


def test_card_name_mismatch_and_limits(alice_api, merchant_alice):
    other = card_for(merchant_alice, holder_name="赵六")
    assert_error(post(alice_api, {"amount": 10_000, "payout_account": other.pk}), 422, "card_name_mismatch")
    assert_error(
        post(alice_api, {"amount": 10**9, "payout_account": account_id(merchant_alice)}, key="big"),
        422,
        "limit_exceeded",
    )


def test_cancel_and_failed_reason(alice_api, merchant_alice, monkeypatch):
    from risk.contract import RiskDecision

    monkeypatch.setattr("withdrawals.services.risk_assess_withdrawal", lambda event: RiskDecision("review", 50))
    big = post(alice_api, {"amount": 2_500_000, "payout_account": account_id(merchant_alice)}).json()
    assert big["status"] == "pending_review"
    cancelled = alice_api.post(f"/api/v1/withdrawals/{big['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert_error(alice_api.post(f"/api/v1/withdrawals/{big['id']}/cancel"), 409, "invalid_state")
    monkeypatch.setattr("withdrawals.services.risk_assess_withdrawal", lambda event: RiskDecision("allow", 0))
    failing = card_for(merchant_alice, "11")
    w = post(alice_api, {"amount": 10_000, "payout_account": failing.pk}, key="fail-1").json()
    detail = alice_api.get(f"/api/v1/withdrawals/{w['id']}").json()
    assert (detail["status"], detail["failure_code"]) == ("failed", "invalid_account")
    assert "收款账户不存在" in detail["failure_reason"]
    assert alice_api.get("/api/v1/wallet").json()["available"] == ALICE_CREDIT


def test_unknown_api_path_is_json_404(alice_api):
    r = alice_api.get("/api/v1/nothing-here")
    assert_error(r, 404, "not_found")


def test_insufficient_funds(merchant_mallory):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_mallory)}")
    available = wallet_balances(merchant_id=merchant_mallory.pk).available
    r = post(client, {"amount": available + 1, "payout_account": account_id(merchant_mallory)})
    assert_error(r, 422, "insufficient_funds")
    assert wallet_balances(merchant_id=merchant_mallory.pk).available == available


def test_rate_limit_per_key_answers_429_with_retry_after(alice_api, settings):
    from django.core.cache import cache

    settings.API_RATE_LIMIT = "3/min"
    cache.clear()
    assert [alice_api.get("/api/v1/wallet").status_code for _ in range(3)] == [200, 200, 200]
    r = alice_api.get("/api/v1/wallet")
    assert_error(r, 429, "rate_limited")
    assert r.json()["error"]["details"]["retry_after"] > 0 and int(r["Retry-After"]) >= 1
    cache.clear()
