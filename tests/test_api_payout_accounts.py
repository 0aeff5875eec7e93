"""The partner API's payout accounts: the ids ``POST /api/v1/withdrawals`` takes, with the numbers masked."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils.dateparse import parse_datetime

from accounts.models import PayoutAccount
from accounts.services import api_key_create, payout_account_add

pytestmark = pytest.mark.django_db(transaction=True)

CARD = "6217006123456789013"
ALIPAY = "13912345678"
OPENID = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"


@pytest.fixture
def alice_api(merchant_alice):
    key = api_key_create(merchant=merchant_alice)
    return Client(HTTP_AUTHORIZATION=f"Bearer {key}")


@pytest.fixture
def alice_accounts(merchant_alice):
    """Alice's default card (from the factory), then a second card, an Alipay and a WeChat account, newest last."""
    default = merchant_alice.payout_accounts.get(is_default=True)
    card = payout_account_add(merchant=merchant_alice, account_number=CARD, holder_name="张三", bank_code="CMB")
    alipay = payout_account_add(
        merchant=merchant_alice, kind=PayoutAccount.Kind.ALIPAY, account_number=ALIPAY, holder_name="张三"
    )
    wechat = payout_account_add(
        merchant=merchant_alice, kind=PayoutAccount.Kind.WECHAT, account_number=OPENID, holder_name="张三"
    )
    PayoutAccount.objects.filter(pk=alipay.pk).update(status=PayoutAccount.Status.DISABLED)
    return {"default": default, "card": card, "alipay": alipay, "wechat": wechat}


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"] and "details" in body["error"]


def expected(account: PayoutAccount, **fields: object) -> dict[str, object]:
    return {"id": account.pk, "holder_name": "张三", **fields}


def without_created_at(row: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in row.items() if k != "created_at"}


def test_list_shows_the_callers_accounts_masked_default_first_then_newest(alice_api, alice_accounts):
    r = alice_api.get("/api/v1/payout-accounts")
    assert r.status_code == 200, r.content
    rows = r.json()["results"]
    default = alice_accounts["default"]
    n = default.account_number
    assert [without_created_at(row) for row in rows] == [
        expected(
            default,
            kind="bank_card",
            masked_number=f"{n[:4]} **** **** {n[-4:]}",
            bank_code="ICBC",
            bank_name="中国工商银行",
            is_default=True,
            status="active",
        ),
        expected(
            alice_accounts["wechat"],
            kind="wechat",
            masked_number="o6_***fL2M",
            bank_code="",
            bank_name="",
            is_default=False,
            status="active",
        ),
        expected(
            alice_accounts["alipay"],
            kind="alipay",
            masked_number="139****5678",
            bank_code="",
            bank_name="",
            is_default=False,
            status="disabled",
        ),
        expected(
            alice_accounts["card"],
            kind="bank_card",
            masked_number="6217 **** **** 9013",
            bank_code="CMB",
            bank_name="招商银行",
            is_default=False,
            status="active",
        ),
    ]
    by_id = {a.pk: a for a in alice_accounts.values()}
    for row in rows:
        assert parse_datetime(row["created_at"]) == by_id[row["id"]].created_at


def test_detail_of_an_own_account(alice_api, alice_accounts):
    card = alice_accounts["card"]
    r = alice_api.get(f"/api/v1/payout-accounts/{card.pk}")
    assert r.status_code == 200, r.content
    body = r.json()
    assert parse_datetime(body.pop("created_at")) == card.created_at
    assert body == {
        "id": card.pk,
        "kind": "bank_card",
        "masked_number": "6217 **** **** 9013",
        "holder_name": "张三",
        "bank_code": "CMB",
        "bank_name": "招商银行",
        "is_default": False,
        "status": "active",
    }


def test_the_listed_id_is_what_a_withdrawal_takes(alice_api, alice_accounts):
    account_id = alice_api.get("/api/v1/payout-accounts").json()["results"][0]["id"]
    r = alice_api.post(
        "/api/v1/withdrawals",
        data={"amount": 10_000, "payout_account": account_id, "speed": "standard"},
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="from-the-list",
    )
    assert r.status_code == 201, r.content
    assert r.json()["payout_account"] == account_id


def test_no_full_number_anywhere_in_a_response(alice_api, alice_accounts):
    numbers = [a.account_number for a in alice_accounts.values()]
    bodies = [alice_api.get("/api/v1/payout-accounts").content.decode()]
    bodies += [alice_api.get(f"/api/v1/payout-accounts/{a.pk}").content.decode() for a in alice_accounts.values()]
    for body in bodies:
        compact = body.replace(" ", "")
        for number in numbers:
            assert number not in body and number not in compact
            assert number[-8:] not in compact  # no more than the last four digits


def test_another_merchants_account_is_not_found_and_shows_nothing(alice_api, alice_accounts, merchant_mallory):
    theirs = merchant_mallory.payout_accounts.get(is_default=True)
    r = alice_api.get(f"/api/v1/payout-accounts/{theirs.pk}")
    assert_error(r, 404, "not_found")
    body = r.content.decode()
    assert theirs.masked_number not in body and theirs.holder_name not in body
    assert theirs.account_number[-4:] not in body
    missing = alice_api.get("/api/v1/payout-accounts/999999999")
    assert_error(missing, 404, "not_found")
    assert missing.json() == r.json()  # the same answer as an id that does not exist
    listed = [row["id"] for row in alice_api.get("/api/v1/payout-accounts").json()["results"]]
    assert theirs.pk not in listed


def test_requires_a_valid_bearer_key(alice_accounts):
    card = alice_accounts["card"]
    for path in ("/api/v1/payout-accounts", f"/api/v1/payout-accounts/{card.pk}"):
        assert_error(Client().get(path), 401, "authentication_failed")
        assert_error(Client(HTTP_AUTHORIZATION="Bearer sk_nope_nope").get(path), 401, "authentication_failed")
        anonymous = Client().get(path).content.decode()
        assert card.masked_number not in anonymous


def test_schema_describes_the_endpoints():
    schema = Client().get("/api/v1/schema?format=json").json()
    paths = schema["paths"]  # the contract names each path without the trailing slash the URLs also take
    assert set(paths["/api/v1/payout-accounts"]) == {"get"}
    assert paths["/api/v1/payout-accounts"]["get"]["operationId"] == "payout_accounts_list"
    detail = paths["/api/v1/payout-accounts/{id}"]
    assert set(detail) == {"get"} and detail["get"]["operationId"] == "payout_accounts_get"
    assert {"200", "401", "404"} <= set(detail["get"]["responses"])
    account = schema["components"]["schemas"]["PayoutAccount"]
    assert set(account["properties"]) == {
        "id",
        "kind",
        "masked_number",
        "holder_name",
        "bank_code",
        "bank_name",
        "is_default",
        "status",
        "created_at",
    }
    assert "account_number" not in account["properties"]
