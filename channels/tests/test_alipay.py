"""Alipay fund transfer against the real gateway, with RSA2 both ways, plus interop with alipay-sdk-python."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from alipay.aop.api.util.SignatureUtils import get_sign_content, sign_with_rsa2, verify_with_rsa
from cryptography.hazmat.primitives import serialization

from channels.base import (
    AccountKind,
    ChannelRejected,
    ChannelUnknownOutcome,
    ErrorAction,
    InvalidCallback,
    PayoutRequest,
    PayoutStatus,
)
from channels.sandbox_rules import make_card_number

from .conftest import impatient, order_no

pytestmark = pytest.mark.gateway


def alipay_request(login: str = "payee@example.com", amount: int = 10_050, number: str | None = None):
    return PayoutRequest(
        order_no=number or order_no(),
        amount=amount,
        currency="CNY",
        account_kind=AccountKind.ALIPAY,
        account_number=login,
        holder_name="李四",
    )


def test_round_trip_logon_id(alipay, gateway) -> None:
    request = alipay_request()
    result = alipay.submit(request)
    assert result.status == PayoutStatus.SUCCEEDED and result.channel_reference
    queried = alipay.query(request.order_no)
    assert (queried.status, queried.amount) == (PayoutStatus.SUCCEEDED, 10_050)
    [payout] = gateway.payouts("alipay", request.order_no)
    assert (payout["account_kind"], payout["amount"]) == ("alipay", 10_050)


def test_round_trip_bank_card(alipay, gateway) -> None:
    request = PayoutRequest(
        order_no=order_no(),
        amount=20_000,
        currency="CNY",
        account_kind=AccountKind.BANK_CARD,
        account_number=make_card_number(),
        holder_name="王五",
        bank_code="CMB",
    )
    assert alipay.submit(request).status == PayoutStatus.SUCCEEDED
    assert gateway.payouts("alipay", request.order_no)[0]["account_kind"] == "bank_card"


def test_query_unknown_is_not_found(alipay) -> None:
    assert alipay.query(order_no()).status == PayoutStatus.NOT_FOUND


def test_payee_not_exist_is_permanent(alipay) -> None:
    request = alipay_request("13800000011")
    with pytest.raises(ChannelRejected) as caught:
        alipay.submit(request)
    assert caught.value.permanent and caught.value.reason_code == "invalid_account"
    assert caught.value.provider_code == "PAYEE_NOT_EXIST"
    queried = alipay.query(request.order_no)
    assert (queried.status, queried.reason_code) == (PayoutStatus.FAILED, "invalid_account")


def test_name_mismatch_is_permanent(alipay) -> None:
    with pytest.raises(ChannelRejected) as caught:
        alipay.submit(alipay_request("13800000077"))
    assert caught.value.action == ErrorAction.FAIL and caught.value.reason_code == "name_mismatch"


@pytest.mark.parametrize(
    ("code", "action", "reason"),
    [
        ("PAYER_BALANCE_NOT_ENOUGH", ErrorAction.PAUSE_CHANNEL, "channel_funds_insufficient"),
        ("EXCEED_LIMIT_SM_AMOUNT", ErrorAction.REROUTE, "amount_over_channel_limit"),
        ("PRODUCT_NOT_SIGN", ErrorAction.PAUSE_CHANNEL, "channel_misconfigured"),
    ],
)
def test_refusals_follow_the_catalogue(alipay, gateway, code, action, reason) -> None:
    gateway.script("alipay", force_codes=[code])
    with pytest.raises(ChannelRejected) as caught:
        alipay.submit(alipay_request())
    assert (caught.value.action, caught.value.reason_code) == (action, reason)


def test_system_error_is_unknown_and_resubmit_uses_the_same_number(alipay, gateway) -> None:
    gateway.script("alipay", force_codes=["SYSTEM_ERROR"])
    request = alipay_request()
    with pytest.raises(ChannelUnknownOutcome) as caught:
        alipay.submit(request)
    assert caught.value.reason_code == "channel_system_error" and caught.value.action == ErrorAction.QUERY
    assert alipay.query(request.order_no).status == PayoutStatus.NOT_FOUND
    assert alipay.submit(request).status == PayoutStatus.SUCCEEDED
    assert len(gateway.payouts("alipay", request.order_no)) == 1


def test_transient_twice_on_alipay(alipay) -> None:
    request = alipay_request("13800000055")
    for _ in range(2):
        with pytest.raises(ChannelUnknownOutcome) as caught:
            alipay.submit(request)
        assert caught.value.reason_code == "channel_system_error"
    assert alipay.submit(request).status == PayoutStatus.SUCCEEDED


def test_timeout_then_query(alipay, gateway) -> None:
    gateway.script("alipay", timeout_rate=1.0)
    request = alipay_request()
    with pytest.raises(ChannelUnknownOutcome) as caught, impatient(alipay):
        alipay.submit(request)
    assert (caught.value.reason_code, caught.value.provider_code) == ("channel_timeout", "TIMEOUT")
    assert gateway.wait_attempts("alipay", request.order_no, 1) == 1  # executed, answer withheld
    assert alipay.query(request.order_no).status == PayoutStatus.SUCCEEDED
    gateway.script("alipay", timeout_rate=0.0)
    assert alipay.submit(request).status == PayoutStatus.SUCCEEDED
    assert gateway.payouts("alipay", request.order_no)[0]["submissions"] == 2


def test_notification_verifies_and_forgeries_do_not(alipay, gateway) -> None:
    request = alipay_request()
    alipay.submit(request)
    [callback] = gateway.wait_callbacks("alipay", request.order_no)
    body = callback["body"].encode()
    parsed = alipay.parse_callback(callback["headers"], body)
    assert parsed.status == PayoutStatus.SUCCEEDED and parsed.raw["notify_id"] == callback["notify_id"]
    assert parsed == alipay.parse_callback(callback["headers"], body)  # a duplicate is identical

    params = dict(parse_qsl(callback["body"]))
    biz = json.loads(params["biz_content"])
    tampered = {**params, "biz_content": json.dumps({**biz, "trans_amount": "99999.00"})}
    with pytest.raises(InvalidCallback, match="signature does not verify"):
        alipay.parse_callback({}, urlencode(tampered).encode())
    forged = {**params, "sign": params["sign"][:-8] + "AAAAAAA="}
    with pytest.raises(InvalidCallback, match="signature does not verify"):
        alipay.parse_callback({}, urlencode(forged).encode())


def test_statement_with_planted_difference(alipay, gateway) -> None:
    requests = [alipay_request(amount=500 + i) for i in range(2)]
    for r in requests:
        alipay.submit(r)
    date = dt.datetime.fromtimestamp(
        gateway.payouts("alipay", requests[0].order_no)[0]["updated_at"], dt.timezone(dt.timedelta(hours=8))
    ).date()
    gateway.control("POST", f"/statements/alipay/{date}/plants", {"kind": "drop_row", "order_no": requests[0].order_no})
    lines = {line.order_no: line for line in alipay.fetch_statement(date)}
    assert requests[0].order_no not in lines and lines[requests[1].order_no].amount == 501


def _pkcs1(path: str) -> str:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def test_gateway_speaks_the_official_sdk_signature_format(gateway) -> None:
    """A request signed by alipay-sdk-python's own helpers is accepted; its answer verifies with them too."""
    config = gateway.keys["adapters"]["alipay"]
    params = {
        "app_id": config["app_id"],
        "method": "alipay.fund.trans.common.query",
        "charset": "utf-8",
        "format": "json",
        "sign_type": "RSA2",
        "timestamp": dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S"),
        "version": "1.0",
        "biz_content": json.dumps({"out_biz_no": "NOPE1", "product_code": "TRANS_ACCOUNT_NO_PWD"}),
    }
    params["sign"] = sign_with_rsa2(_pkcs1(config["app_private_key_file"]), get_sign_content(params), "utf-8")
    request = urllib.request.Request(config["server_url"], data=urlencode(params).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        text = response.read().decode()
    data = json.loads(text)
    assert data["alipay_fund_trans_common_query_response"]["sub_code"] == "ORDER_NOT_EXIST"
    start = text.index("{", text.index("_response"))
    end = text.rindex(',"sign"')
    platform_public = Path(config["alipay_public_key_file"]).read_text()
    assert verify_with_rsa(platform_public, text[start:end].encode(), data["sign"])


def test_unsigned_answer_from_an_impostor_is_not_trusted(gateway, receiver) -> None:
    from channels.adapters import build_adapter

    from .conftest import adapter_config

    impostor_key = Path(gateway.keys["files"]["alipay_app_public_key"]).read_text()  # not the platform key
    config = adapter_config(gateway, receiver, "alipay", alipay_public_key=impostor_key, alipay_public_key_file="")
    adapter = build_adapter("alipay", "alipay-bad", config)
    with pytest.raises(ChannelUnknownOutcome) as caught:
        adapter.submit(alipay_request())
    assert (caught.value.reason_code, caught.value.provider_code) == ("channel_response_invalid", "BAD_RESPONSE")
