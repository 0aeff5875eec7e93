"""The authorization matrix: every operation of the served schema × another merchant's object. An id in the path
answers 404 ``not_found`` byte for byte like an id that does not exist; an id in a body (the payout account of a
new withdrawal) answers like an id that does not exist too; lists never show another merchant's rows. Nothing of
the other merchant's object appears in any answer, and nothing of it changes."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from accounts.services import api_key_create
from risk.contract import RiskDecision
from withdrawals.models import Status, Withdrawal
from withdrawals.services import withdrawal_submit

pytestmark = pytest.mark.django_db(transaction=True)

MISSING = 999_999_999_999  # an id no row has


@pytest.fixture
def world(merchant_alice, merchant_mallory, settings, monkeypatch):
    settings.API_RATE_LIMIT = ""
    mallory_account = merchant_mallory.payout_accounts.get(is_default=True)
    # Mallory's withdrawal waits in review (cancellable): the worst case for a cross-merchant cancel.
    monkeypatch.setattr("withdrawals.services.risk_assess_withdrawal", lambda event: RiskDecision("review", 50))
    w = withdrawal_submit(
        merchant_id=merchant_mallory.pk,
        payout_account_id=mallory_account.pk,
        amount=10_000,
        idempotency_key="mallory-1",
    ).withdrawal
    assert w.status == Status.PENDING_REVIEW
    alice = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_alice)}")
    return {"alice": alice, "withdrawal": w, "payout_account": mallory_account, "alice_merchant": merchant_alice}


def _schema_operations():
    schema = Client().get("/api/v1/schema?format=json").json()
    return {
        (method.upper(), path): op["operationId"]
        for path, item in schema["paths"].items()
        for method, op in item.items()
    }


# The object each path id names, by operation.
PATH_OBJECTS = {
    "withdrawals_get": "withdrawal",
    "withdrawals_cancel": "withdrawal",
    "withdrawals_events": "withdrawal",
    "payout_accounts_get": "payout_account",
}


def _call(client, method, path):
    if method == "GET":
        return client.get(path)
    return client.post(path, data=b"", content_type="application/json")


def _leaks(body: bytes, w: Withdrawal, account) -> list[str]:
    text = body.decode()
    secrets_of_mallory = [w.order_no, account.masked_number, account.holder_name, "Mallory", "李四"]
    return [s for s in secrets_of_mallory if s and s in text]


def test_every_operation_with_an_id_answers_not_found_for_another_merchants_object(world):
    alice, w, account = world["alice"], world["withdrawal"], world["payout_account"]
    operations = _schema_operations()
    with_ids = {(m, p): op for (m, p), op in operations.items() if "{id}" in p}
    # a new operation with an id must be added to the matrix
    assert set(with_ids.values()) <= set(PATH_OBJECTS), set(with_ids.values()) - set(PATH_OBJECTS)
    assert len(with_ids) >= 3
    before = Withdrawal.objects.get(pk=w.pk)
    for (method, template), operation in sorted(with_ids.items()):
        theirs = {"withdrawal": w.pk, "payout_account": account.pk}[PATH_OBJECTS[operation]]
        foreign = _call(alice, method, template.replace("{id}", str(theirs)))
        missing = _call(alice, method, template.replace("{id}", str(MISSING)))
        where = f"{method} {template}"
        assert foreign.status_code == 404, (where, foreign.content)
        assert foreign.json()["error"]["code"] == "not_found", where
        assert foreign.json()["error"]["details"] == {}, where
        assert foreign.content == missing.content, where  # indistinguishable from an id that does not exist
        assert not _leaks(foreign.content, w, account), where
    after = Withdrawal.objects.get(pk=w.pk)
    assert after.status == before.status == Status.PENDING_REVIEW
    assert after.updated_at == before.updated_at
    assert after.events.count() == before.events.count()


def test_a_new_withdrawal_to_another_merchants_payout_account_is_refused_like_a_missing_one(world):
    alice, w, account = world["alice"], world["withdrawal"], world["payout_account"]

    def create(account_id, key):
        return alice.post(
            "/api/v1/withdrawals",
            data=json.dumps({"amount": 10_000, "payout_account": account_id}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=key,
        )

    foreign = create(account.pk, "x-1")
    missing = create(MISSING, "x-2")
    assert foreign.status_code == missing.status_code == 422
    assert foreign.json() == missing.json()
    assert foreign.json()["error"]["code"] == "payout_account_invalid"
    assert not _leaks(foreign.content, w, account)
    assert not Withdrawal.objects.filter(merchant=world["alice_merchant"]).exists()

    def quote(account_id):
        return alice.post(
            "/api/v1/quotes",
            data=json.dumps({"amount": 10_000, "payout_account": account_id}),
            content_type="application/json",
        )

    foreign_quote, missing_quote = quote(account.pk), quote(MISSING)
    assert foreign_quote.status_code == missing_quote.status_code == 422
    assert foreign_quote.content == missing_quote.content
    assert not _leaks(foreign_quote.content, w, account)


def test_lists_and_cursors_show_only_the_callers_rows(world):
    alice, w, account = world["alice"], world["withdrawal"], world["payout_account"]
    for path in (
        "/api/v1/withdrawals",
        f"/api/v1/withdrawals?before={w.pk + 1}",
        "/api/v1/withdrawals?status=pending_review",
        "/api/v1/payout-accounts",
        "/api/v1/wallet",
    ):
        response = alice.get(path)
        assert response.status_code == 200, (path, response.content)
        assert not _leaks(response.content, w, account), path
        body = response.json()
        if "results" in body:
            ids = {row["id"] for row in body["results"]}
            assert w.pk not in ids or "payout-accounts" in path
            assert account.pk not in ids or "withdrawals" in path
    assert alice.get("/api/v1/withdrawals").json()["results"] == []
    assert alice.get("/api/v1/wallet").json()["held"] == 0  # Mallory's hold is not Alice's
