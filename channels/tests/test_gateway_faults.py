"""The gateway's scriptable faults, observed through the bank-direct adapter and the control API."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from channels.base import ChannelUnknownOutcome, PayoutStatus

from .conftest import impatient
from .test_bankdirect import card_request

pytestmark = pytest.mark.gateway


def test_drop_before_executing_leaves_nothing(bankdirect, gateway) -> None:
    gateway.script("bankdirect", drop_rate=1.0)
    request = card_request()
    with pytest.raises(ChannelUnknownOutcome) as caught, impatient(bankdirect):
        bankdirect.submit(request)
    assert (caught.value.reason_code, caught.value.provider_code) == ("channel_timeout", "TIMEOUT")
    assert gateway.wait_attempts("bankdirect", request.order_no, 1) == 1  # it arrived, and was dropped
    assert bankdirect.query(request.order_no).status == PayoutStatus.NOT_FOUND
    assert gateway.payouts("bankdirect", request.order_no) == []


def test_forced_timeout_executes_then_withholds(bankdirect, gateway) -> None:
    gateway.script("bankdirect", force_codes=["TIMEOUT"])
    request = card_request()
    with pytest.raises(ChannelUnknownOutcome) as caught, impatient(bankdirect):
        bankdirect.submit(request)
    assert caught.value.provider_code == "TIMEOUT"
    assert gateway.wait_attempts("bankdirect", request.order_no, 1) == 1
    assert bankdirect.query(request.order_no).status == PayoutStatus.SUCCEEDED
    assert gateway.control("GET", "/channels/bankdirect/script")["force_codes"] == []


def test_latency_is_added(bankdirect, gateway) -> None:
    gateway.script("bankdirect", latency_ms=200)
    started = time.monotonic()
    bankdirect.submit(card_request())
    assert time.monotonic() - started >= 0.2


def test_lost_callback_is_logged_not_sent(bankdirect, gateway) -> None:
    gateway.script("bankdirect", callback_lost_rate=1.0)
    request = card_request()
    bankdirect.submit(request)
    [callback] = gateway.callbacks("bankdirect", request.order_no)
    assert callback["status"] == "lost" and callback["deliveries"] == 0
    assert bankdirect.query(request.order_no).status == PayoutStatus.SUCCEEDED  # the query still settles it


def test_late_callback(bankdirect, gateway) -> None:
    gateway.script("bankdirect", callback_late_rate=1.0, callback_late_seconds=1.0)
    request = card_request()
    bankdirect.submit(request)
    [callback] = gateway.wait_callbacks("bankdirect", request.order_no)
    assert callback["fault"] == "late"
    assert callback["delivery_log"][0]["at"] - callback["created_at"] >= 1.0  # never earlier (later is fine)


def test_out_of_order_callbacks(bankdirect, gateway, receiver) -> None:
    # Held back for up to an hour: only the next callback releases it, right after that one has been sent.
    gateway.script("bankdirect", callback_out_of_order_rate=1.0, callback_late_seconds=3600)
    request = card_request("88")  # succeeded, then returned: two callbacks for one payout
    bankdirect.submit(request)
    gateway.script("bankdirect", callback_out_of_order_rate=0.0)
    gateway.act("bankdirect", request.order_no, "settle")
    callbacks = gateway.wait_callbacks("bankdirect", request.order_no, count=2)
    by_arrival = sorted(callbacks, key=lambda c: c["delivery_log"][0]["at"])
    statuses = [bankdirect.parse_callback(c["headers"], c["body"].encode()).status for c in by_arrival]
    assert statuses == [PayoutStatus.RETURNED, PayoutStatus.SUCCEEDED]
    received = [
        bankdirect.parse_callback(h, body).status
        for _, h, body in receiver.received
        if request.order_no.encode() in body
    ]
    assert received == [PayoutStatus.RETURNED, PayoutStatus.SUCCEEDED]  # as the receiver saw them


def test_resend_is_byte_identical(bankdirect, gateway) -> None:
    request = card_request()
    bankdirect.submit(request)
    [callback] = gateway.wait_callbacks("bankdirect", request.order_no)
    gateway.control("POST", f"/callbacks/{callback['id']}/resend", {})
    deadline = time.monotonic() + 30  # bounded polling of another process on a possibly busy machine
    while gateway.callbacks("bankdirect", request.order_no)[0]["deliveries"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gateway.callbacks("bankdirect", request.order_no)[0]["deliveries"] == 2


def test_return_rate(bankdirect, gateway) -> None:
    gateway.script("bankdirect", return_rate=1.0, return_after_seconds=600)
    request = card_request()
    assert bankdirect.submit(request).status == PayoutStatus.SUCCEEDED
    [payout] = gateway.payouts("bankdirect", request.order_no)
    assert payout["return_at"] - payout["updated_at"] == pytest.approx(600)  # planned, not yet due
    assert bankdirect.query(request.order_no).status == PayoutStatus.SUCCEEDED
    gateway.control("POST", "/clock/advance", {"seconds": 600})  # the gateway's clock, not ours, moves
    result = bankdirect.query(request.order_no)
    assert (result.status, result.reason_code) == (PayoutStatus.RETURNED, "bank_returned")


def test_script_validation_and_reset(gateway) -> None:
    request = urllib.request.Request(
        gateway.base_url + "/_control/channels/bankdirect/script", data=b'{"timeout_rate": 2}', method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    gateway.script("bankdirect", maintenance=True)
    gateway.control("POST", "/reset")
    assert gateway.control("GET", "/channels/bankdirect/script")["maintenance"] is False


def test_keys_are_published(gateway) -> None:
    keys = gateway.control("GET", "/keys")
    assert set(keys["adapters"]) == {"bankdirect", "alipay", "wechat"}
    assert (gateway.data_dir / "alipay_platform_public.pem").exists()
