"""Security issue, findings 7 and 8: bad input is answered 400 in the error envelope (never a 500), the admin's
review buttons never redirect off-site, a refused callback learns nothing, and the partner API shows the chosen
channel's name and arrival only."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from accounts.services import api_key_create
from channels.base import InvalidCallback
from tests.factories import ChannelFactory, MerchantFactory, reviewer
from tests.staff import staff_client
from withdrawals.attempts import routing_explanation
from withdrawals.models import Status, Withdrawal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice_api(merchant_alice):
    return Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_alice)}", raise_request_exception=False)


def assert_error(response, status: int, code: str = "invalid_request") -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    return body["error"]["details"]


def _create(client: Client, body: str, key: str = "k-1"):
    return client.post("/api/v1/withdrawals", data=body, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


def _body(merchant) -> dict:
    return {"amount": 10_000, "payout_account": merchant.payout_accounts.get(is_default=True).pk}


# --- NUL bytes and deep JSON ------------------------------------------------------------------------------
def test_nul_in_the_query_string_is_a_400(alice_api):
    assert assert_error(alice_api.get("/api/v1/withdrawals?status=%00"), 400) == {"query": "contains a NUL byte"}
    assert_error(alice_api.get("/api/v1/withdrawals?status=paid%00"), 400)
    assert_error(alice_api.get("/api/v1/withdrawals?status=nonsense"), 400)  # and an unknown status is named
    assert alice_api.get("/api/v1/withdrawals?status=paid").status_code == 200


def test_nul_in_the_idempotency_key_is_a_400(alice_api, merchant_alice):
    details = assert_error(_create(alice_api, json.dumps(_body(merchant_alice)), key="order\x001"), 400)
    assert details == {"header": "contains a NUL byte"}
    assert not Withdrawal.objects.exists()


def test_nul_in_a_json_string_is_a_400(alice_api, merchant_alice):
    body = json.dumps({**_body(merchant_alice), "device": "fp\u0000x"})
    assert "\\u0000" in body
    details = assert_error(_create(alice_api, body), 400)
    assert "NUL" in details["body"]
    key_nul = json.dumps({**_body(merchant_alice), "\u0000": 1})
    assert_error(_create(alice_api, key_nul, key="k-2"), 400)
    assert not Withdrawal.objects.exists()


def test_5000_deep_json_is_a_400(alice_api):
    for deep in ("[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000, "[" * 5000):
        details = assert_error(_create(alice_api, deep), 400)
        assert "deeper than 32" in details["body"]
    # Brackets inside strings are text, not nesting.
    assert_error(_create(alice_api, json.dumps({"device": "[" * 5000})), 400)  # refused for other reasons


def test_nul_and_deep_json_never_500_on_the_pages_or_callbacks(merchant_alice, sandbox_channel):
    client = Client(raise_request_exception=False)
    client.login(username="alice", password="pass-1234")
    assert client.get("/withdrawals/?status=%00").status_code == 400
    assert client.get("/withdraw/?amount=%00").status_code == 400
    ChannelFactory(code="bankdirect", name="银行直连", adapter="bankdirect", config={})
    deep = ("[" * 5000 + "]" * 5000).encode()
    answer = Client(raise_request_exception=False).post(
        "/callbacks/bankdirect/", data=deep, content_type="application/json"
    )
    assert answer.status_code < 500 or answer.status_code == 503


# --- the review buttons stay on this site -----------------------------------------------------------------
def test_approve_and_reject_never_follow_an_offsite_next(merchant_alice, monkeypatch):
    from risk.contract import RiskDecision
    from withdrawals.services import withdrawal_submit

    monkeypatch.setattr("withdrawals.services.risk_assess_withdrawal", lambda event: RiskDecision("review", 60, [], {}))
    account = merchant_alice.payout_accounts.get(is_default=True)
    w1, w2 = (
        withdrawal_submit(
            merchant_id=merchant_alice.pk, payout_account_id=account.pk, amount=10_000, idempotency_key=f"r{n}"
        ).withdrawal
        for n in (1, 2)
    )
    client = staff_client(reviewer("bob"))
    change = f"/admin/withdrawals/withdrawal/{w1.pk}/change/"
    for evil in (
        "https://evil.example/",
        "//evil.example/x",
        "https:///evil.example",
        "http://testserver.evil.example/",
    ):
        response = client.post(f"/admin/withdrawals/withdrawal/{w1.pk}/approve/", {"next": evil})
        assert response.status_code == 302 and response["Location"] == change, evil
    assert Withdrawal.objects.get(pk=w1.pk).status in (Status.APPROVED, Status.PROCESSING, Status.PAID)
    rejected = client.post(
        f"/admin/withdrawals/withdrawal/{w2.pk}/reject/", {"next": "https://evil.example/", "reason": "可疑"}
    )
    assert rejected["Location"] == f"/admin/withdrawals/withdrawal/{w2.pk}/change/"
    # A next within the site is still honoured (back to the review queue).
    queue = "/admin/withdrawals/reviewqueue/"
    assert (
        client.post(f"/admin/withdrawals/withdrawal/{w2.pk}/reject/", {"next": queue, "reason": "x"})["Location"]
        == queue
    )


# --- a refused callback learns nothing ---------------------------------------------------------------------
def test_a_refused_callback_gets_a_generic_answer_and_the_reason_is_logged(sandbox_channel, monkeypatch, caplog):
    reason = "bankdirect callback signature does not verify (expected key k-7f3a)"

    class Refusing:
        def parse_callback(self, headers, body):
            raise InvalidCallback(reason)

    for code, adapter in (("bankdirect", "bankdirect"), ("alipay", "alipay"), ("wechat", "wechat")):
        ChannelFactory(code=code, name=code, adapter=adapter, config={})
    monkeypatch.setattr("withdrawals.callbacks.channel_adapter", lambda code: Refusing())
    caplog.set_level(logging.WARNING, logger="withdrawals.callbacks")
    for code in ("bankdirect", "alipay", "wechat"):
        answer = Client().post(f"/callbacks/{code}/", data=b"{}", content_type="application/json")
        assert answer.status_code in (400, 401)
        body = answer.content.decode()
        assert "signature" not in body.lower() and "k-7f3a" not in body and "验签" not in body, body
        assert "X-Callback-Outcome" not in answer
    assert reason in caplog.text  # operations still see why


# --- the partner API shows no routing internals ----------------------------------------------------------
def test_api_withdrawal_shows_the_channel_name_and_arrival_only(sandbox_channel):
    ChannelFactory(code="cheap", name="便宜通道", adapter="sandbox", fee_fixed=10, priority=5)
    merchant = MerchantFactory(credit=1_000_000)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant)}")
    created = api.post(
        "/api/v1/withdrawals",
        data=json.dumps(_body(merchant)),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="rt-1",
    ).json()
    w = Withdrawal.objects.get(pk=created["id"])
    routing = routing_explanation(w)
    assert routing.get("candidates") and w.channel_code  # the full explanation is stored for the admin
    winner = next(c for c in routing["candidates"] if c["channel"] == w.channel_code)
    for body in (created, api.get(f"/api/v1/withdrawals/{w.pk}").json(), api.get("/api/v1/withdrawals").json()):
        text = json.dumps(body, ensure_ascii=False)
        for internal in ("routing", "candidates", "cost", "quota", "weights", "score", "why_not", "breaker"):
            assert internal not in text, internal
    detail = api.get(f"/api/v1/withdrawals/{w.pk}").json()
    assert detail["channel"] == {"name": winner["name"], "expected_arrival_seconds": winner["arrival"]}
    other = "便宜通道" if winner["name"] != "便宜通道" else "沙箱通道"
    assert other not in json.dumps(detail, ensure_ascii=False)  # the channels not chosen stay unnamed
