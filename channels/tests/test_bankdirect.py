"""Bank-direct against the real gateway: signatures, every sandbox_rules behaviour, callbacks, idempotency."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time

import pytest

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

from .conftest import HANG_SECONDS, impatient, order_no

pytestmark = pytest.mark.gateway


def card_request(suffix: str = "", amount: int = 12_345, number: str | None = None) -> PayoutRequest:
    return PayoutRequest(
        order_no=number or order_no(),
        amount=amount,
        currency="CNY",
        account_kind=AccountKind.BANK_CARD,
        account_number=make_card_number(suffix),
        holder_name="张三",
        bank_code="ICBC",
    )


def test_round_trip_with_real_signatures(bankdirect, gateway) -> None:
    request = card_request()
    result = bankdirect.submit(request)
    assert result.status == PayoutStatus.SUCCEEDED
    assert result.amount == request.amount and result.channel_reference.startswith("BD")
    queried = bankdirect.query(request.order_no)
    assert (queried.status, queried.channel_reference) == (PayoutStatus.SUCCEEDED, result.channel_reference)
    [callback] = gateway.wait_callbacks("bankdirect", request.order_no)
    parsed = bankdirect.parse_callback(callback["headers"], callback["body"].encode())
    assert parsed.status == PayoutStatus.SUCCEEDED and parsed.raw["notify_id"] == callback["notify_id"]


def test_query_unknown_order_is_not_found(bankdirect) -> None:
    assert bankdirect.query(order_no()).status == PayoutStatus.NOT_FOUND


@pytest.mark.parametrize(
    ("suffix", "reason", "provider_code"),
    [
        ("11", "invalid_account", "ACCOUNT_INVALID"),
        ("22", "account_frozen", "ACCOUNT_FROZEN"),
        ("77", "name_mismatch", "NAME_MISMATCH"),
    ],
)
def test_permanent_failures(bankdirect, suffix, reason, provider_code) -> None:
    request = card_request(suffix)
    result = bankdirect.submit(request)
    assert (result.status, result.reason_code, result.provider_code) == (
        PayoutStatus.FAILED,
        reason,
        provider_code,
    )
    assert bankdirect.query(request.order_no).reason_code == reason


def test_timeout_then_paid_raises_unknown_and_query_settles(bankdirect, gateway) -> None:
    request = card_request("33")
    started = time.monotonic()
    with pytest.raises(ChannelUnknownOutcome) as caught, impatient(bankdirect):
        bankdirect.submit(request)
    assert (caught.value.action, caught.value.provider_code) == (ErrorAction.QUERY, "TIMEOUT")
    assert time.monotonic() - started < HANG_SECONDS  # it gave up at its own timeout, not when the line dropped
    assert gateway.wait_attempts("bankdirect", request.order_no, 1) == 1  # decided (executed), answer withheld
    assert bankdirect.query(request.order_no).status == PayoutStatus.SUCCEEDED


def test_delayed_stays_processing_until_settled(bankdirect, gateway) -> None:
    gateway.script("bankdirect", delayed_seconds=3600)  # however slow this machine, it waits for the settle
    request = card_request("44")
    assert bankdirect.submit(request).status == PayoutStatus.PROCESSING
    assert bankdirect.query(request.order_no).status == PayoutStatus.PROCESSING
    gateway.act("bankdirect", request.order_no, "settle")
    assert bankdirect.query(request.order_no).status == PayoutStatus.SUCCEEDED


def test_delayed_settles_when_the_clock_moves(bankdirect, gateway) -> None:
    gateway.script("bankdirect", delayed_seconds=3600)
    request = card_request("44")
    assert bankdirect.submit(request).status == PayoutStatus.PROCESSING
    gateway.control("POST", "/clock/advance", {"seconds": 3000})
    assert bankdirect.query(request.order_no).status == PayoutStatus.PROCESSING  # not before its time
    gateway.control("POST", "/clock/advance", {"seconds": 600})
    assert bankdirect.query(request.order_no).status == PayoutStatus.SUCCEEDED


def test_transient_twice_then_paid_under_the_same_number(bankdirect, gateway) -> None:
    request = card_request("55")
    for _ in range(2):
        with pytest.raises(ChannelRejected) as caught:
            bankdirect.submit(request)
        assert caught.value.action == ErrorAction.RETRY and caught.value.reason_code == "channel_system_error"
        assert bankdirect.query(request.order_no).status == PayoutStatus.NOT_FOUND
    assert bankdirect.submit(request).status == PayoutStatus.SUCCEEDED
    assert len(gateway.payouts("bankdirect", request.order_no)) == 1


def test_lost_request_then_resubmit_pays_once(bankdirect, gateway) -> None:
    request = card_request("66")
    with pytest.raises(ChannelUnknownOutcome) as caught, impatient(bankdirect):
        bankdirect.submit(request)
    assert (caught.value.reason_code, caught.value.provider_code) == ("channel_timeout", "TIMEOUT")
    assert gateway.wait_attempts("bankdirect", request.order_no, 1) == 1  # the first request arrived: dropped
    assert bankdirect.query(request.order_no).status == PayoutStatus.NOT_FOUND
    assert bankdirect.submit(request).status == PayoutStatus.SUCCEEDED
    assert len(gateway.payouts("bankdirect", request.order_no)) == 1


def test_returned_after_success(bankdirect, gateway) -> None:
    request = card_request("88")
    assert bankdirect.submit(request).status == PayoutStatus.SUCCEEDED
    gateway.act("bankdirect", request.order_no, "settle")  # the planned return happens now
    result = bankdirect.query(request.order_no)
    assert (result.status, result.reason_code) == (PayoutStatus.RETURNED, "bank_returned")
    callbacks = gateway.wait_callbacks("bankdirect", request.order_no, count=2)
    statuses = [bankdirect.parse_callback(c["headers"], c["body"].encode()).status for c in callbacks]
    assert statuses == [PayoutStatus.SUCCEEDED, PayoutStatus.RETURNED]


def test_bank_return_for_a_given_order(bankdirect, gateway) -> None:
    request = card_request()
    bankdirect.submit(request)
    gateway.act("bankdirect", request.order_no, "return")
    assert bankdirect.query(request.order_no).status == PayoutStatus.RETURNED


def test_resubmit_same_order_creates_no_second_payout(bankdirect, gateway) -> None:
    request = card_request()
    first = bankdirect.submit(request)
    second = bankdirect.submit(request)
    assert first.channel_reference == second.channel_reference
    [payout] = gateway.payouts("bankdirect", request.order_no)
    assert payout["submissions"] == 2


def test_resubmit_with_other_amount_is_a_conflict_to_query(bankdirect) -> None:
    request = card_request()
    bankdirect.submit(request)
    with pytest.raises(ChannelUnknownOutcome) as caught:
        bankdirect.submit(card_request(amount=1, number=request.order_no))
    assert caught.value.reason_code == "order_conflict"


@pytest.mark.parametrize(
    ("code", "action", "reason"),
    [
        ("BALANCE_INSUFFICIENT", ErrorAction.PAUSE_CHANNEL, "channel_funds_insufficient"),
        ("RATE_LIMITED", ErrorAction.BACKOFF, "rate_limited"),
        ("AMOUNT_OVER_LIMIT", ErrorAction.REROUTE, "amount_over_channel_limit"),
    ],
)
def test_forced_refusals_follow_the_catalogue(bankdirect, gateway, code, action, reason) -> None:
    gateway.script("bankdirect", force_codes=[code])
    request = card_request()
    with pytest.raises(ChannelRejected) as caught:
        bankdirect.submit(request)
    assert (caught.value.action, caught.value.reason_code, caught.value.provider_code) == (
        action,
        reason,
        code,
    )
    assert bankdirect.query(request.order_no).status == PayoutStatus.NOT_FOUND


def test_sandbox_rules_beat_random_faults(bankdirect, gateway) -> None:
    gateway.script("bankdirect", failure_rates={"BALANCE_INSUFFICIENT": 1.0})
    assert bankdirect.submit(card_request("11")).reason_code == "invalid_account"
    with pytest.raises(ChannelRejected) as caught:
        bankdirect.submit(card_request())
    assert (caught.value.reason_code, caught.value.provider_code) == (
        "channel_funds_insufficient",
        "BALANCE_INSUFFICIENT",
    )


def test_maintenance_window(bankdirect, gateway) -> None:
    gateway.script("bankdirect", maintenance=True)
    with pytest.raises(ChannelRejected) as caught:
        bankdirect.submit(card_request())
    assert caught.value.reason_code == "channel_maintenance" and caught.value.action == ErrorAction.REROUTE
    gateway.script("bankdirect", maintenance=False)
    assert bankdirect.submit(card_request()).status == PayoutStatus.SUCCEEDED


def test_wrong_secret_is_refused_as_misconfiguration(gateway, receiver) -> None:
    from channels.adapters import build_adapter

    from .conftest import adapter_config

    config = adapter_config(gateway, receiver, "bankdirect", secret="not-the-secret", secret_file="")
    adapter = build_adapter("bankdirect", "bank-bad", config)
    # The gateway's answer is signed with the real secret, which this adapter cannot verify: unknown outcome.
    with pytest.raises(ChannelUnknownOutcome) as caught:
        adapter.submit(card_request())
    assert caught.value.reason_code == "channel_response_invalid"
    assert gateway.payouts("bankdirect") == []


def _callback(gateway, bankdirect):
    request = card_request()
    bankdirect.submit(request)
    [callback] = gateway.wait_callbacks("bankdirect", request.order_no)
    return callback["headers"], callback["body"].encode()


def test_forged_callback_rejected(bankdirect, gateway) -> None:
    headers, body = _callback(gateway, bankdirect)
    ts, nonce = headers["X-BD-Timestamp"], headers["X-BD-Nonce"]
    message = f"CALLBACK\n{headers['X-BD-Event-Id']}\n{ts}\n{nonce}\n".encode() + body
    forged = {**headers, "X-BD-Signature": hmac.new(b"guessed", message, hashlib.sha256).hexdigest()}
    with pytest.raises(InvalidCallback, match="signature does not verify"):
        bankdirect.parse_callback(forged, body)


def test_tampered_callback_rejected(bankdirect, gateway) -> None:
    headers, body = _callback(gateway, bankdirect)
    data = json.loads(body)
    data["payout"]["status"] = "FAILED"
    with pytest.raises(InvalidCallback, match="signature does not verify"):
        bankdirect.parse_callback(headers, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())


def test_stale_callback_rejected(bankdirect, gateway) -> None:
    headers, body = _callback(gateway, bankdirect)
    bankdirect.callback_max_age = -1
    with pytest.raises(InvalidCallback, match="timestamp missing or stale"):
        bankdirect.parse_callback(headers, body)


def test_duplicate_callback_parses_identically(bankdirect, gateway, receiver) -> None:
    gateway.script("bankdirect", callback_duplicate_rate=1.0)
    request = card_request()
    bankdirect.submit(request)
    [callback] = gateway.wait_callbacks("bankdirect", request.order_no)
    deadline = time.monotonic() + 30  # bounded polling of another process on a possibly busy machine
    while len(receiver.bodies(request.order_no.encode())) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    first, second = receiver.bodies(request.order_no.encode())
    assert first == second
    assert bankdirect.parse_callback(callback["headers"], first) == bankdirect.parse_callback(
        callback["headers"], second
    )


def test_statement_with_planted_differences(bankdirect, gateway) -> None:
    requests = [card_request(amount=1000 + i) for i in range(4)]
    for r in requests:
        bankdirect.submit(r)
    date = dt.datetime.fromisoformat(bankdirect.query(requests[0].order_no).raw["updated_at"]).date()
    clean = {line.order_no: line for line in bankdirect.fetch_statement(date)}
    assert {r.order_no for r in requests} <= set(clean)

    base = f"/statements/bankdirect/{date.isoformat()}/plants"
    gateway.control("POST", base, {"kind": "drop_row", "order_no": requests[0].order_no})
    gateway.control("POST", base, {"kind": "alter_amount", "order_no": requests[1].order_no, "amount": 1})
    gateway.control("POST", base, {"kind": "alter_status", "order_no": requests[2].order_no, "status": "FAILED"})
    gateway.control("POST", base, {"kind": "add_unknown", "order_no": "GHOST1", "amount": 777})
    planted = {line.order_no: line for line in bankdirect.fetch_statement(date)}

    assert set(clean) - set(planted) == {requests[0].order_no}
    assert set(planted) - set(clean) == {"GHOST1"} and planted["GHOST1"].amount == 777
    changed = {no for no in set(clean) & set(planted) if clean[no] != planted[no]}
    assert changed == {requests[1].order_no, requests[2].order_no}
    assert planted[requests[1].order_no].amount == 1
    assert planted[requests[2].order_no].status == PayoutStatus.FAILED
    gateway.control("DELETE", base)
