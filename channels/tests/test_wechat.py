"""WeChat Pay v3 merchant transfer against the real gateway, plus interop with the wechatpayv3 helpers."""

from __future__ import annotations

import base64
import json
import urllib.request
from pathlib import Path

import pytest
from wechatpayv3.utils import aes_decrypt, build_authorization, load_private_key, load_public_key, rsa_verify

from channels.base import (
    AccountKind,
    ChannelRejected,
    ChannelUnknownOutcome,
    ErrorAction,
    InvalidCallback,
    PayoutRequest,
    PayoutStatus,
)

from .conftest import impatient, order_no

pytestmark = pytest.mark.gateway


def wx_request(openid: str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", amount: int = 8_800, number: str | None = None):
    return PayoutRequest(
        order_no=number or order_no(),
        amount=amount,
        currency="CNY",
        account_kind=AccountKind.WECHAT,
        account_number=openid,
        holder_name="赵六",
    )


def test_awaiting_payee_then_confirmed(wechat, gateway) -> None:
    request = wx_request()
    result = wechat.submit(request)
    assert result.status == PayoutStatus.AWAITING_PAYEE and result.raw["package_info"]
    assert wechat.query(request.order_no).status == PayoutStatus.AWAITING_PAYEE
    [payout] = gateway.payouts("wechat", request.order_no)
    assert payout["holder_name"] == "赵六"  # user_name travelled RSA-OAEP encrypted and the gateway decrypted it
    gateway.act("wechat", request.order_no, "confirm")
    assert wechat.query(request.order_no).status == PayoutStatus.SUCCEEDED
    [callback] = gateway.wait_callbacks("wechat", request.order_no)
    parsed = wechat.parse_callback(callback["headers"], callback["body"].encode())
    assert (parsed.status, parsed.amount, parsed.raw["notify_id"]) == (
        PayoutStatus.SUCCEEDED,
        8_800,
        callback["notify_id"],
    )


def test_unclaimed_expires_to_payee_unclaimed(wechat, gateway) -> None:
    request = wx_request()
    wechat.submit(request)
    gateway.act("wechat", request.order_no, "expire")
    result = wechat.query(request.order_no)
    assert (result.status, result.reason_code) == (PayoutStatus.FAILED, "payee_unclaimed")
    [callback] = gateway.wait_callbacks("wechat", request.order_no)
    assert wechat.parse_callback(callback["headers"], callback["body"].encode()).reason_code == "payee_unclaimed"


def test_unclaimed_after_24_hours_of_gateway_time(wechat, gateway) -> None:
    request = wx_request()
    wechat.submit(request)
    gateway.control("POST", "/clock/advance", {"seconds": 23 * 3600})
    assert wechat.query(request.order_no).status == PayoutStatus.AWAITING_PAYEE
    gateway.control("POST", "/clock/advance", {"seconds": 3600 + 1})
    assert wechat.query(request.order_no).reason_code == "payee_unclaimed"


def test_auto_confirm(wechat, gateway) -> None:
    gateway.script("wechat", auto_confirm=True)
    assert wechat.submit(wx_request()).status == PayoutStatus.SUCCEEDED


def test_name_not_correct_fails(wechat) -> None:
    result = wechat.submit(wx_request("oUser0077"))
    assert (result.status, result.reason_code, result.provider_code) == (
        PayoutStatus.FAILED,
        "name_mismatch",
        "NAME_NOT_CORRECT",
    )


def test_account_frozen_fails(wechat) -> None:
    assert wechat.submit(wx_request("oUser0022")).reason_code == "account_frozen"


@pytest.mark.parametrize(
    ("code", "action", "reason"),
    [
        ("FREQUENCY_LIMITED", ErrorAction.BACKOFF, "rate_limited"),
        ("NO_AUTH", ErrorAction.PAUSE_CHANNEL, "channel_misconfigured"),
        ("NOT_ENOUGH", ErrorAction.PAUSE_CHANNEL, "channel_funds_insufficient"),
    ],
)
def test_refusals_follow_the_catalogue(wechat, gateway, code, action, reason) -> None:
    gateway.script("wechat", force_codes=[code])
    with pytest.raises(ChannelRejected) as caught:
        wechat.submit(wx_request())
    assert (caught.value.action, caught.value.reason_code) == (action, reason)


def test_system_error_is_unknown(wechat, gateway) -> None:
    gateway.script("wechat", force_codes=["SYSTEM_ERROR"])
    with pytest.raises(ChannelUnknownOutcome) as caught:
        wechat.submit(wx_request())
    assert (caught.value.reason_code, caught.value.provider_code) == ("channel_system_error", "SYSTEM_ERROR")


def test_resubmit_differing_is_a_conflict_not_a_failure(wechat, gateway) -> None:
    request = wx_request()
    wechat.submit(request)
    assert wechat.submit(request).status == PayoutStatus.AWAITING_PAYEE
    with pytest.raises(ChannelUnknownOutcome) as caught:
        wechat.submit(wx_request(amount=1, number=request.order_no))
    assert caught.value.reason_code == "order_conflict"
    [payout] = gateway.payouts("wechat", request.order_no)
    assert payout["submissions"] == 2


def test_lost_request_on_wechat(wechat, gateway) -> None:
    request = wx_request("oUser0066")
    with pytest.raises(ChannelUnknownOutcome) as caught, impatient(wechat):
        wechat.submit(request)
    assert (caught.value.reason_code, caught.value.provider_code) == ("channel_timeout", "TIMEOUT")
    assert gateway.wait_attempts("wechat", request.order_no, 1) == 1  # the first request arrived: dropped
    assert wechat.query(request.order_no).status == PayoutStatus.NOT_FOUND
    assert wechat.submit(request).status == PayoutStatus.AWAITING_PAYEE


def _notification(wechat, gateway):
    gateway.script("wechat", auto_confirm=True)
    request = wx_request()
    wechat.submit(request)
    [callback] = gateway.wait_callbacks("wechat", request.order_no)
    return callback


def test_tampered_resource_rejected(wechat, gateway) -> None:
    callback = _notification(wechat, gateway)
    data = json.loads(callback["body"])
    cipher = bytearray(base64.b64decode(data["resource"]["ciphertext"]))
    cipher[0] ^= 1
    data["resource"]["ciphertext"] = base64.b64encode(bytes(cipher)).decode()
    with pytest.raises(InvalidCallback, match="signature does not verify"):  # the body is signed too
        wechat.parse_callback(callback["headers"], json.dumps(data).encode())


def test_forged_signature_rejected(wechat, gateway) -> None:
    callback = _notification(wechat, gateway)
    headers = {**callback["headers"], "Wechatpay-Signature": base64.b64encode(b"x" * 256).decode()}
    with pytest.raises(InvalidCallback, match="signature does not verify"):
        wechat.parse_callback(headers, callback["body"].encode())
    stale = {**callback["headers"], "Wechatpay-Timestamp": "1600000000"}
    with pytest.raises(InvalidCallback, match="timestamp missing or stale"):
        wechat.parse_callback(stale, callback["body"].encode())


def test_statement(wechat, gateway) -> None:
    gateway.script("wechat", auto_confirm=True)
    request = wx_request(amount=4_321)
    wechat.submit(request)
    import datetime as dt

    when = gateway.payouts("wechat", request.order_no)[0]["updated_at"]
    date = dt.datetime.fromtimestamp(when, dt.timezone(dt.timedelta(hours=8))).date()
    gateway.control(
        "POST",
        f"/statements/wechat/{date}/plants",
        {"kind": "alter_amount", "order_no": request.order_no, "amount": 4_000},
    )
    [line] = [x for x in wechat.fetch_statement(date) if x.order_no == request.order_no]
    assert line.amount == 4_000 and line.status == PayoutStatus.SUCCEEDED


def test_gateway_speaks_the_wechatpayv3_formats(gateway) -> None:
    """Authorization from the package's build_authorization is accepted; answers and notifications verify and
    decrypt with its rsa_verify / aes_decrypt."""
    config = gateway.keys["adapters"]["wechat"]
    files = gateway.keys["files"]
    merchant_key = load_private_key(Path(files["wechat_merchant_private_key"]).read_text())
    platform_key = load_public_key(Path(files["wechat_platform_public_key"]).read_text())
    path = "/v3/fund-app/mch-transfer/transfer-bills"
    body = {
        "appid": config["appid"],
        "out_bill_no": order_no(),
        "transfer_scene_id": "1005",
        "openid": "oSdkInterop",
        "transfer_amount": 100,
        "transfer_remark": "interop",
    }
    text = json.dumps(body)
    auth = build_authorization(path, "POST", config["mch_id"], config["merchant_serial_no"], merchant_key, data=text)
    request = urllib.request.Request(gateway.base_url + path, data=text.encode(), method="POST")
    request.add_header("Authorization", auth)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as response:
        answer, headers = response.read().decode(), response.headers
    assert json.loads(answer)["state"] == "WAIT_USER_CONFIRM"
    assert rsa_verify(
        headers["Wechatpay-Timestamp"],
        headers["Wechatpay-Nonce"],
        answer,
        headers["Wechatpay-Signature"],
        platform_key,
    )
    gateway.act("wechat", body["out_bill_no"], "confirm")
    [callback] = gateway.wait_callbacks("wechat", body["out_bill_no"], status="")
    h = callback["headers"]
    assert rsa_verify(
        h["Wechatpay-Timestamp"],
        h["Wechatpay-Nonce"],
        callback["body"],
        h["Wechatpay-Signature"],
        platform_key,
    )
    resource = json.loads(callback["body"])["resource"]
    apiv3 = Path(files["wechat_apiv3_key"]).read_text().strip()
    plain = aes_decrypt(resource["nonce"], resource["ciphertext"], resource["associated_data"], apiv3)
    assert json.loads(plain)["state"] == "SUCCESS"
