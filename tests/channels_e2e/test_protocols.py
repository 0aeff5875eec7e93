"""Each protocol end to end against the real gateway process, with real signatures both ways: withdrawal_submit
→ the worker submits → the channel answers / calls back → paid (or failed with the merchant's reason)."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest
from django.db.models import F

from accounts.services import payout_account_add
from channels.models import CallbackReceipt, Channel
from tests.factories import MerchantFactory, card_for
from wallets.selectors import ledger_problems, wallet_balances
from withdrawals import payouts
from withdrawals.models import Status, Withdrawal, WithdrawalEvent
from withdrawals.selectors import withdrawal_ledger_problems
from withdrawals.services import withdrawal_submit

from .conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.gateway]
CREDIT = 5_000_000


def submit(merchant, account, amount=20_000, speed="standard") -> Withdrawal:
    return withdrawal_submit(
        merchant_id=merchant.pk, payout_account_id=account.pk, amount=amount, speed=speed
    ).withdrawal


def only(platform, code):
    Channel.objects.exclude(code=code).update(enabled=False)


def books_ok():
    assert ledger_problems() == []
    assert withdrawal_ledger_problems() == []


def post_raw(url, headers, body):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_bankdirect_round_trip_paid_by_submit_then_callback_is_a_harmless_duplicate(platform):
    gw, broker = platform["gateway"], platform["broker"]
    only(platform, "bankdirect")
    merchant = MerchantFactory(credit=CREDIT)
    w = submit(merchant, merchant.payout_accounts.get(is_default=True))
    broker.drain()
    w = Withdrawal.objects.get(pk=w.pk)
    assert (w.status, w.channel_code) == (Status.PAID, "bankdirect")
    [payout] = gw.payouts("bankdirect", w.order_no)
    assert (payout["status"], payout["amount"], payout["submissions"]) == ("succeeded", w.net_amount, 1)
    assert w.channel_reference == payout["reference"]
    # The signed callback reaches /callbacks/bankdirect/. It races the submit's answer (the gateway sends it as
    # soon as the payout is booked): exactly one of the two applies, whichever came first; the other changes
    # nothing.
    [callback] = gw.wait_callbacks("bankdirect", w.order_no)
    assert callback["delivery_log"][-1]["status"] == 200
    receipts = CallbackReceipt.objects.filter(order_no=w.order_no)
    assert wait_for(receipts.exists)
    [paid] = w.events.filter(to_status=Status.PAID).exclude(from_status=Status.PAID)
    assert paid.data["source"] in ("submit", "callback")
    assert receipts.get().outcome == ("applied" if paid.data["source"] == "callback" else "unchanged")
    books_ok()


def test_bankdirect_callback_alone_settles_a_delayed_payout(platform):
    gw, broker = platform["gateway"], platform["broker"]
    only(platform, "bankdirect")
    gw.script("bankdirect", delayed_seconds=3600)  # it pays when the test says so, not when 20 s have passed
    merchant = MerchantFactory(credit=CREDIT)
    w = submit(merchant, card_for(merchant, "44"))  # accepted, processing at the bank
    broker.queue.clear()
    payouts.payout_run(withdrawal_id=w.pk)
    broker.queue.clear()  # no polling: only the callback may settle it
    w = Withdrawal.objects.get(pk=w.pk)
    assert w.status == Status.PROCESSING
    gw.act("bankdirect", w.order_no, "settle")
    receipts = CallbackReceipt.objects.filter(order_no=w.order_no)
    assert wait_for(receipts.exists)  # written once the callback has been applied
    assert receipts.get().outcome == "applied"
    w = Withdrawal.objects.get(pk=w.pk)
    assert w.status == Status.PAID
    [paid] = w.events.filter(to_status=Status.PAID).exclude(from_status=Status.PAID)
    assert paid.data["source"] == "callback"
    books_ok()


def test_alipay_round_trip_with_rsa2_both_ways(platform):
    gw, broker = platform["gateway"], platform["broker"]
    only(platform, "alipay")
    merchant = MerchantFactory(credit=CREDIT, real_name="张三")
    account = payout_account_add(
        merchant=merchant, kind="alipay", account_number="zhangsan@example.com", holder_name="张三", make_default=True
    )
    w = submit(merchant, account)
    broker.drain()
    w = Withdrawal.objects.get(pk=w.pk)
    assert (w.status, w.channel_code) == (Status.PAID, "alipay")
    [payout] = gw.payouts("alipay", w.order_no)
    assert (payout["status"], payout["account_kind"]) == ("succeeded", "alipay")
    [callback] = gw.wait_callbacks("alipay", w.order_no)
    assert callback["delivery_log"][-1]["status"] == 200  # we answered "success"
    assert wait_for(lambda: CallbackReceipt.objects.filter(order_no=w.order_no).exists())
    books_ok()


def test_alipay_permanent_refusal_fails_with_the_merchants_reason(platform):
    broker = platform["broker"]
    only(platform, "alipay")
    merchant = MerchantFactory(credit=CREDIT)
    w = submit(merchant, card_for(merchant, "11"))  # bank card through Alipay: the payee does not exist
    broker.drain()
    w = Withdrawal.objects.get(pk=w.pk)
    assert (w.status, w.failure_code) == (Status.FAILED, "invalid_account")
    assert wallet_balances(merchant_id=merchant.pk).available == CREDIT
    books_ok()


def wechat_account(merchant):
    return payout_account_add(
        merchant=merchant,
        kind="wechat",
        # The sandbox picks a fate by the account's last two digits: end on 00 (pays) whatever the random part holds.
        account_number="o" + uuid.uuid4().hex[:25] + "00",
        holder_name=merchant.kyc.real_name,
        make_default=True,
    )


def test_wechat_waits_for_the_payee_then_pays_on_the_signed_encrypted_notification(platform):
    gw, broker = platform["gateway"], platform["broker"]
    only(platform, "wechat")
    merchant = MerchantFactory(credit=CREDIT)
    w = submit(merchant, wechat_account(merchant))
    broker.drain(max_tasks=1)  # the submit: the bill waits for the payee
    # On a loaded machine the submit's answer can be lost (outcome unknown); the query that follows settles it.
    for _ in range(3):
        w = Withdrawal.objects.get(pk=w.pk)
        if w.status != Status.OUTCOME_UNKNOWN:
            break
        broker.drain(max_tasks=1)
    story = [(e.to_status, e.reason, e.data.get("code") or e.data.get("channel_status")) for e in w.events.all()]
    assert w.status == Status.PROCESSING and w.awaiting_payee_since is not None, (w.failure_code, story)
    broker.drain(max_tasks=3)  # polls keep it processing
    assert Withdrawal.objects.get(pk=w.pk).status == Status.PROCESSING
    broker.queue.clear()
    gw.act("wechat", w.order_no, "confirm")
    receipts = CallbackReceipt.objects.filter(order_no=w.order_no)
    assert wait_for(receipts.exists)  # written once the notification has been applied
    assert receipts.get().outcome == "applied"
    assert Withdrawal.objects.get(pk=w.pk).status == Status.PAID
    books_ok()


def test_wechat_unclaimed_after_24h_fails_payee_unclaimed_and_releases_the_hold(platform):
    gw, broker = platform["gateway"], platform["broker"]
    only(platform, "wechat")
    merchant = MerchantFactory(credit=CREDIT)
    w = submit(merchant, wechat_account(merchant))
    broker.drain(max_tasks=1)
    broker.queue.clear()
    gw.control("POST", "/clock/advance", {"seconds": 24 * 3600 + 1})  # the payee never confirms
    assert wait_for(lambda: Withdrawal.objects.get(pk=w.pk).status == Status.FAILED)
    w = Withdrawal.objects.get(pk=w.pk)
    assert w.failure_code == "payee_unclaimed"
    balances = wallet_balances(merchant_id=merchant.pk)
    assert (balances.available, balances.held) == (CREDIT, 0)
    books_ok()


def test_forged_and_replayed_callbacks_are_refused(platform):
    gw, broker, url = platform["gateway"], platform["broker"], platform["url"]
    only(platform, "bankdirect")
    merchant = MerchantFactory(credit=CREDIT)
    gw.script("bankdirect", delayed_seconds=3600)  # paid when the test settles it
    w = submit(merchant, card_for(merchant, "44"))
    broker.drain(max_tasks=1)
    broker.queue.clear()
    gw.act("bankdirect", w.order_no, "settle")
    [callback] = gw.wait_callbacks("bankdirect", w.order_no)
    assert wait_for(lambda: Withdrawal.objects.get(pk=w.pk).status == Status.PAID)
    events = WithdrawalEvent.objects.filter(withdrawal=w).count()

    # Forged: the same payout reported FAILED, signature left as it was → refused, nothing changes.
    body = json.loads(callback["body"])
    body["payout"]["status"] = "FAILED"
    status, _, _ = post_raw(f"{url}/callbacks/bankdirect/", callback["headers"], json.dumps(body).encode())
    assert status == 401
    # Forged Alipay-style form to the Alipay endpoint with a made-up signature → refused too.
    status, _, answer = post_raw(
        f"{url}/callbacks/alipay/",
        {"Content-Type": "application/x-www-form-urlencoded"},
        f"notify_id=x&out_biz_no={w.order_no}&status=FAIL&sign_type=RSA2&sign=AAAA".encode(),
    )
    assert (status, answer) == (400, b"fail")

    # Replayed: byte-identical resend (by the gateway, and by us) → acknowledged as a duplicate.
    gw.control("POST", f"/callbacks/{callback['id']}/resend")
    assert wait_for(lambda: len(gw.callbacks("bankdirect", w.order_no)[0]["delivery_log"]) >= 2)
    status, headers, _ = post_raw(f"{url}/callbacks/bankdirect/", callback["headers"], callback["body"].encode())
    assert status == 200 and headers["X-Callback-Outcome"] == "duplicate"
    assert CallbackReceipt.objects.filter(order_no=w.order_no).count() == 1
    w = Withdrawal.objects.get(pk=w.pk)
    assert w.status == Status.PAID
    assert WithdrawalEvent.objects.filter(withdrawal=w).count() == events
    books_ok()


def test_duplicated_and_reordered_callbacks_change_nothing_twice(platform):
    """The answer to our submit is lost; the bank pays, then returns the payment. Its callbacks arrive in the
    wrong order (returned before succeeded), then each again, byte-identical: the withdrawal ends reversed,
    paid once and reversed once."""
    gw, broker = platform["gateway"], platform["broker"]
    only(platform, "bankdirect")
    gw.script(
        "bankdirect",
        force_codes=["TIMEOUT"],
        return_rate=1.0,
        return_after_seconds=3600,  # the return happens when the test says so
        callback_out_of_order_rate=1.0,
        callback_late_seconds=3600,  # held back until the next callback has been sent, however long that takes
    )
    merchant = MerchantFactory(credit=CREDIT)
    w = submit(merchant, merchant.payout_accounts.get(is_default=True))
    broker.drain(max_tasks=1)
    broker.queue.clear()  # no queries: only callbacks move it
    assert Withdrawal.objects.get(pk=w.pk).status == Status.OUTCOME_UNKNOWN
    [held] = gw.callbacks("bankdirect", w.order_no)
    assert (held["fault"], held["status"]) == ("out_of_order", "pending")
    gw.script("bankdirect", callback_out_of_order_rate=0.0)
    gw.act("bankdirect", w.order_no, "settle")  # the bank returns it now: RETURNED goes out, then SUCCEEDED
    callbacks = gw.wait_callbacks("bankdirect", w.order_no, count=2)
    assert [json.loads(c["body"])["payout"]["status"] for c in callbacks] == ["SUCCEEDED", "RETURNED"]
    arrived = sorted(
        (entry["at"], json.loads(c["body"])["payout"]["status"]) for c in callbacks for entry in c["delivery_log"]
    )
    assert [status for _, status in arrived][:2] == ["RETURNED", "SUCCEEDED"]  # reordered
    receipts = CallbackReceipt.objects.filter(order_no=w.order_no)
    assert wait_for(lambda: receipts.count() == 2)
    w = Withdrawal.objects.get(pk=w.pk)
    assert w.status == Status.REVERSED
    events = w.events.count()

    for c in callbacks:  # the provider sends both again
        gw.control("POST", f"/callbacks/{c['id']}/resend")
    assert wait_for(lambda: [c["deliveries"] for c in gw.callbacks("bankdirect", w.order_no)] == [2, 2])
    assert all(c["delivery_log"][-1]["status"] == 200 for c in gw.callbacks("bankdirect", w.order_no))
    assert receipts.count() == 2
    assert w.events.count() == events
    moves = list(w.events.exclude(from_status=F("to_status")).values_list("to_status", flat=True))
    assert moves.count("paid") == 1 and moves.count("reversed") == 1
    balances = wallet_balances(merchant_id=merchant.pk)
    assert (balances.available, balances.held) == (CREDIT, 0)
    [payout] = gw.payouts("bankdirect", w.order_no)
    assert payout["submissions"] == 1
    books_ok()
