"""The partner API's OpenAPI document is the contract: served at /api/v1/schema, complete (bodies, errors, auth,
headers, examples, links), with a docs page served from our own origin under the site's CSP."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from drf_spectacular.validation import validate_schema

from accounts.services import api_key_create
from config.catalogue import ACTIONS, CODES
from tests.factories import card_for

pytestmark = pytest.mark.django_db(transaction=True)

OPERATIONS = {
    ("get", "/api/v1/wallet"): "wallet_get",
    ("get", "/api/v1/withdrawals"): "withdrawals_list",
    ("post", "/api/v1/withdrawals"): "withdrawals_create",
    ("get", "/api/v1/withdrawals/{id}"): "withdrawals_get",
    ("post", "/api/v1/withdrawals/{id}/cancel"): "withdrawals_cancel",
    ("get", "/api/v1/withdrawals/{id}/events"): "withdrawals_events",
    ("post", "/api/v1/quotes"): "quotes_create",
    ("get", "/api/v1/payout-accounts"): "payout_accounts_list",
    ("get", "/api/v1/payout-accounts/{id}"): "payout_accounts_get",
}
UTC_ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def schema():
    response = Client().get("/api/v1/schema?format=json")
    assert response.status_code == 200, response.content
    return json.loads(response.content)


def _ref(prop):
    return (prop.get("$ref") or prop["allOf"][0]["$ref"]).rsplit("/", 1)[1]


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def test_schema_is_valid_openapi_and_names_every_operation(schema):
    validate_schema(schema)  # the OpenAPI 3.0 JSON schema
    assert schema["openapi"].startswith("3.")
    found = {(method, path): op["operationId"] for method, path, op in _operations(schema)}
    assert found == OPERATIONS
    # YAML by default, for a human
    yaml = Client().get("/api/v1/schema")
    assert yaml.status_code == 200 and yaml.content.startswith(b"openapi: 3.")


def test_every_operation_has_auth_bodies_errors_and_examples(schema):
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "sk_<prefix>_<secret>",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    for method, path, op in _operations(schema):
        where = f"{method.upper()} {path}"
        assert op["security"] == [{"ApiKey": []}], where
        assert op.get("summary"), where
        ok = [s for s in op["responses"] if s.startswith("2")]
        assert ok, where
        for status in ok:
            content = op["responses"][status]["content"]["application/json"]
            assert "$ref" in content["schema"], where
            assert content.get("examples"), f"{where} {status}: no example"
        for status, response in op["responses"].items():
            if status.startswith("2"):
                continue
            content = response["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, where
            examples = content["examples"]
            codes = [e["value"]["error"]["code"] for e in examples.values()]
            assert codes, where
            for code in codes:  # each example's code answers with exactly this status
                assert CODES[code].status == int(status), f"{where}: {code} under {status}"
                assert f"`{code}`" in response["description"], where
        # every authenticated operation documents the key's failures
        assert "authentication_failed" in json.dumps(op["responses"]["401"]), where
        assert {"rate_limited", "login_locked"} <= set(re.findall(r"`(\w+)`", op["responses"]["429"]["description"]))
        if "{id}" in path:
            assert "404" in op["responses"], where
            (param,) = [p for p in op["parameters"] if p["in"] == "path"]
            assert param["schema"]["type"] == "integer" and param["required"] is True


def test_create_documents_idempotency_and_every_refusal(schema):
    op = schema["paths"]["/api/v1/withdrawals"]["post"]
    (header,) = [p for p in op["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key" and header["required"] is True
    body = op["requestBody"]
    assert body["required"] is True
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    request = schema["components"]["schemas"][ref]
    assert set(request["properties"]) == {"amount", "payout_account", "speed", "expected_fee", "device"}
    assert set(request["required"]) == {"amount", "payout_account"}
    assert body["content"]["application/json"]["examples"]
    documented = {
        code
        for status, response in op["responses"].items()
        if not status.startswith("2")
        for code in re.findall(r"`(\w+)`", response["description"])
    }
    assert {
        "idempotency_key_required",
        "idempotency_key_reused",
        "invalid_amount",
        "insufficient_funds",
        "quote_expired",
        "limit_exceeded",
        "payout_account_invalid",
        "card_name_mismatch",
        "kyc_required",
    } <= documented
    assert set(op["responses"]) >= {"200", "201", "400", "401", "409", "422", "429"}
    # create → get → cancel, from the schema alone
    for status in ("200", "201"):
        links = op["responses"][status]["links"]
        assert links["GetWithdrawal"] == {
            "operationId": "withdrawals_get",
            "parameters": {"id": "$response.body#/id"},
            "description": links["GetWithdrawal"]["description"],
        }
        assert links["CancelWithdrawal"]["operationId"] == "withdrawals_cancel"
        assert links["ListWithdrawalEvents"]["operationId"] == "withdrawals_events"


def test_error_envelope_codes_are_the_catalogue(schema):
    components = schema["components"]["schemas"]
    error = components["Error"]
    assert error["required"] == ["error"]
    detail = components[error["properties"]["error"]["$ref"].rsplit("/", 1)[1]]
    assert set(detail["required"]) == {"code", "message", "action", "details"}
    code_enum = components[_ref(detail["properties"]["code"])]["enum"]
    assert sorted(code_enum) == sorted(CODES)
    action = components["Action"]
    action_enum = components[_ref(action["properties"]["code"])]["enum"]
    assert sorted(action_enum) == sorted(ACTIONS)


def test_withdrawal_schema_is_typed_and_times_are_utc(schema, merchant_alice):
    withdrawal = schema["components"]["schemas"]["Withdrawal"]
    for field in ("created_at", "updated_at", "paid_at"):
        assert withdrawal["properties"][field]["format"] == "date-time"
    event = schema["components"]["schemas"]["WithdrawalEvent"]
    assert set(event["properties"]) == {"from", "to", "reason", "actor", "at"}
    assert _ref(withdrawal["properties"]["risk"]) == "WithdrawalRisk"

    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_alice)}")
    account = merchant_alice.payout_accounts.get(is_default=True).pk
    created = client.post(
        "/api/v1/withdrawals",
        data=json.dumps({"amount": 10_000, "payout_account": account}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="utc-1",
    ).json()
    times = [created["created_at"], created["updated_at"], *[e["at"] for e in created["events"]]]
    detail = client.get(f"/api/v1/withdrawals/{created['id']}").json()
    times += [detail["created_at"], detail["paid_at"], *[e["at"] for e in detail["events"]]]
    attempts = detail["payout_attempts"]
    assert attempts and attempts[0]["answers"]
    times += [a["started_at"] for a in attempts] + [x["at"] for a in attempts for x in a["answers"]]
    times += [w["created_at"] for w in client.get("/api/v1/withdrawals").json()["results"]]
    times += [a["created_at"] for a in client.get("/api/v1/payout-accounts").json()["results"]]
    assert len(times) >= 8
    for value in times:
        assert UTC_ISO.match(value), value
    # the pages keep Asia/Shanghai: only the API speaks UTC
    assert "+08:00" not in json.dumps(detail)


def test_docs_page_is_served_locally_under_the_sites_csp(merchant_alice):
    client = Client()
    assert client.get("/api/v1/").status_code == 302
    assert client.get("/api/v1/", follow=True).redirect_chain[-1][0].endswith("/api/v1/docs")
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    scripts = re.findall(r'<script src="([^"]+)"', html)
    assert "<script>" not in html  # no inline script: the init script is its own request
    assert len(scripts) == 3
    for src in scripts:
        assert src.startswith("/"), src  # our own origin, nothing from a CDN
        served = client.get(src)
        assert served.status_code == 200, src
        body = b"".join(served.streaming_content) if served.streaming else served.content
        assert len(body) > 100
    init = client.get(scripts[-1])
    assert "/api/v1/schema" in init.content.decode()
    for href in re.findall(r'<link rel="stylesheet" href="([^"]+)"', html):
        assert href.startswith("/static/drf_spectacular_sidecar/"), href
    csp = page["Content-Security-Policy"]
    directives = dict([*d.strip().split(" ", 1), ""][:2] for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    # the rest of the site keeps the same policy
    assert client.get("/login/")["Content-Security-Policy"] == csp


def test_merchant_pages_link_to_the_docs(merchant_alice):
    client = Client()
    assert client.login(username="alice", password="pass-1234")
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="/api/v1/docs"' in page.content.decode()


def test_account_ids_for_the_readme_example_come_from_the_api(merchant_alice, merchant_mallory):
    """The README's "payout_account" is an id from GET /payout-accounts: each merchant gets their own."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_mallory)}")
    ids = [a["id"] for a in client.get("/api/v1/payout-accounts").json()["results"]]
    assert ids and set(ids) == set(merchant_mallory.payout_accounts.values_list("pk", flat=True))
    second = card_for(merchant_mallory, "12")
    again = [a["id"] for a in client.get("/api/v1/payout-accounts").json()["results"]]
    assert second.pk in again and len(again) == len(ids) + 1


def test_events_and_quotes(merchant_alice):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_alice)}")
    account = merchant_alice.payout_accounts.get(is_default=True).pk
    quote = client.post(
        "/api/v1/quotes",
        data=json.dumps({"amount": 100_000, "speed": "standard", "payout_account": account}),
        content_type="application/json",
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert quote.status_code == 200, quote.content
    q = quote.json()
    assert set(q) == {"amount", "fee", "net_amount", "speed", "currency", "arrival", "channel_available"}
    assert q["amount"] == 100_000 and q["fee"] + q["net_amount"] == 100_000 and q["channel_available"] is True
    assert q["arrival"] and not re.search(r"[\u4e00-\u9fff]", q["arrival"])  # English on request
    # the quoted fee is what the create charges, and is accepted as expected_fee
    created = client.post(
        "/api/v1/withdrawals",
        data=json.dumps({"amount": 100_000, "payout_account": account, "expected_fee": q["fee"]}),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="quoted-1",
    )
    assert created.status_code == 201 and created.json()["fee"] == q["fee"]
    events = client.get(f"/api/v1/withdrawals/{created.json()['id']}/events").json()["results"]
    assert (events[0]["to"], events[-1]["to"]) == ("submitted", "paid")
    assert events == client.get(f"/api/v1/withdrawals/{created.json()['id']}").json()["events"]
    assert all(UTC_ISO.match(e["at"]) for e in events)
    bad = client.post("/api/v1/quotes", data=json.dumps({"amount": 0}), content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_amount"


def test_list_filters_and_cursor(merchant_alice):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant_alice)}")
    default = merchant_alice.payout_accounts.get(is_default=True).pk
    other = card_for(merchant_alice, "12").pk
    made = []
    for n, (amount, speed, account) in enumerate(
        [(10_000, "standard", default), (20_000, "instant", default), (30_000, "standard", other)] * 2
    ):
        response = client.post(
            "/api/v1/withdrawals",
            data=json.dumps({"amount": amount, "speed": speed, "payout_account": account}),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=f"filter-{n}",
        )
        assert response.status_code == 201, response.content
        made.append(response.json()["id"])
    newest_first = made[::-1]

    def ids(query):
        response = client.get(f"/api/v1/withdrawals?{query}")
        assert response.status_code == 200, (query, response.content)
        return [w["id"] for w in response.json()["results"]], response.json()["next_before"]

    assert ids("") == (newest_first, None)
    assert ids("speed=instant")[0] == [made[4], made[1]]
    assert ids(f"payout_account={other}")[0] == [made[5], made[2]]
    assert ids("min_amount=20000&max_amount=20000")[0] == [made[4], made[1]]
    assert ids(f"speed=standard&payout_account={default}")[0] == [made[3], made[0]]
    # pages of two, following next_before, cover every row once, newest first
    pages, before = [], None
    while True:
        page, before = ids("limit=2" + (f"&before={before}" if before else ""))
        pages.append(page)
        if before is None:
            break
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:6]]
    for bad in ("limit=0", "limit=101", "speed=warp", "min_amount=-1", "payout_account=x", "before=0", "sort=id"):
        response = client.get(f"/api/v1/withdrawals?{bad}")
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request", bad
