"""The merchant pages through Django's test client: what a merchant sees and what each click does to money."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.models import Notification
from accounts.services import payout_account_find
from config.money import fen_to_yuan
from risk.contract import RiskDecision
from risk.models import SmsMessage
from tests.factories import card_for
from tests.security_support import last_sms_code
from wallets.selectors import wallet_balances
from withdrawals.models import Status, Withdrawal

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_client(merchant_alice) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    assert client.login(username="alice", password="pass-1234")
    return client


def _available(merchant) -> int:  # type: ignore[no-untyped-def]
    return wallet_balances(merchant_id=merchant.pk).available


def _html(response) -> str:  # type: ignore[no-untyped-def]
    return response.content.decode()


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


def _start(client: Client, amount: str, account_id: int, speed: str = "standard"):  # type: ignore[no-untyped-def]
    return client.post("/withdraw/", {"amount": amount, "payout_account": account_id, "speed": speed})


def _confirm_form(client: Client, merchant, amount: str, *, account=None, speed: str = "standard"):  # type: ignore[no-untyped-def]
    """Step 1 → the confirm page. Returns (confirm html, POST data of the 确认提现 form)."""
    account = account or merchant.payout_accounts.get(is_default=True)
    step1 = _start(client, amount, account.pk, speed)
    assert step1.status_code == 302, _html(step1)
    assert step1["Location"].startswith("/withdraw/confirm/?d=")
    page = client.get(step1["Location"])
    assert page.status_code == 200
    html = _html(page)
    token = parse_qs(urlparse(step1["Location"]).query)["d"][0]
    data = {
        "d": token,
        "idempotency_key": _hidden(html, "idempotency_key"),
        "expected_fee": _hidden(html, "expected_fee"),
        "device": "fp-test-device-0001",
    }
    return html, data


def _submit(client: Client, data: dict, capture):  # type: ignore[no-untyped-def]
    # Tasks are enqueued on commit; inside the test transaction that moment is the end of this block.
    with capture(execute=True):
        return client.post("/withdraw/confirm/", data)


# --- login ------------------------------------------------------------------------------------------------
def test_login_page_logs_in_and_records_device(merchant_alice, monkeypatch):  # type: ignore[no-untyped-def]
    seen = []
    monkeypatch.setattr("withdrawals.views.login_record", lambda **kw: seen.append(kw))
    client = Client()
    assert client.get("/").status_code == 302
    page = client.get("/login/")
    assert "商户登录" in _html(page)
    response = client.post(
        "/login/",
        {"username": "alice", "password": "pass-1234", "device": "fpabcdef0123456789"},
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert seen == [{"merchant": merchant_alice, "ip": "10.1.2.3", "device": "fpabcdef0123456789"}]
    bad = Client().post("/login/", {"username": "alice", "password": "wrong"})
    assert "用户名或密码错误" in _html(bad)


def test_login_falls_back_to_header_hash_without_script(merchant_alice, monkeypatch):  # type: ignore[no-untyped-def]
    seen = []
    monkeypatch.setattr("withdrawals.views.login_record", lambda **kw: seen.append(kw))
    Client().post(
        "/login/",
        {"username": "alice", "password": "pass-1234", "device": "<script>"},
        HTTP_USER_AGENT="UA/1",
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )
    assert seen[0]["device"].startswith("ua-") and len(seen[0]["device"]) == 35


def test_staff_without_merchant_is_sent_to_admin(reviewer_bob):  # type: ignore[no-untyped-def]
    response = Client().post("/login/", {"username": "bob", "password": "pass-1234"})
    assert response.status_code == 200
    assert "/admin/" in _html(response)
    client = Client()
    client.force_login(reviewer_bob)
    assert client.get("/")["Location"] == "/admin/"


def test_logout_requires_post(alice_client):  # type: ignore[no-untyped-def]
    assert alice_client.post("/logout/").status_code == 302
    assert alice_client.get("/").status_code == 302


# --- dashboard --------------------------------------------------------------------------------------------
def test_dashboard_shows_balances(alice_client, merchant_alice):  # type: ignore[no-untyped-def]
    html = _html(alice_client.get("/"))
    assert "可提现余额" in html and f"¥{fen_to_yuan(_available(merchant_alice))}</div>" in html
    for label in ("提现中", "待结算", "保证金"):
        assert label in html
    assert 'href="/withdraw/"' in html


# --- withdraw in two steps --------------------------------------------------------------------------------
def test_step1_prefills_default_account_and_disables_other_names(alice_client, merchant_alice):  # type: ignore[no-untyped-def]
    other = card_for(merchant_alice, "", holder_name="王五")
    html = _html(alice_client.get("/withdraw/"))
    default = merchant_alice.payout_accounts.get(is_default=True)
    assert re.search(rf'value="{default.pk}"\s+checked', html)
    assert other.masked_number in html
    assert "收款账户户名与实名认证姓名不一致" in html
    assert f'value="{other.pk}"' not in html  # cannot be chosen at all
    for label in ("极速到账", "普通到账", "T+1"):
        assert label in html
    # and a forged POST naming it is refused by the form
    response = _start(alice_client, "100.00", other.pk)
    assert response.status_code == 200 and "请选择一个可用的收款账户" in _html(response)


def test_two_steps_create_exactly_one_withdrawal_and_charge_the_fee_shown(
    alice_client, merchant_alice, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    start = _available(merchant_alice)
    html, data = _confirm_form(alice_client, merchant_alice, "100.50", speed="instant")
    assert Withdrawal.objects.count() == 0  # step 2 shows, it does not submit
    fee_shown = int(data["expected_fee"])
    assert f"¥{fen_to_yuan(fee_shown)}" in html
    assert f"¥{fen_to_yuan(10050 - fee_shown)}" in html  # 到账金额
    assert "到账金额" in html and "约 2 分钟内到账" in html and "沙箱通道" in html

    response = _submit(alice_client, data, django_capture_on_commit_callbacks)
    w = Withdrawal.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/withdrawals/{w.pk}/"
    assert (w.amount, w.fee, w.net_amount, w.speed) == (10050, fee_shown, 10050 - fee_shown, "instant")
    assert w.device_id == "fp-test-device-0001"
    detail = _html(alice_client.get(response["Location"]))
    assert "申请成功" in detail
    assert "已到账" in detail
    assert Withdrawal.objects.get(pk=w.pk).status == Status.PAID
    assert _available(merchant_alice) == start - 10050


def test_double_submit_and_refresh_create_one_withdrawal(
    alice_client, merchant_alice, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    start = _available(merchant_alice)
    _, data = _confirm_form(alice_client, merchant_alice, "200.00")
    first = _submit(alice_client, data, django_capture_on_commit_callbacks)
    second = _submit(alice_client, data, django_capture_on_commit_callbacks)
    assert Withdrawal.objects.count() == 1
    assert first["Location"] == second["Location"]
    assert "已经提交过" in _html(alice_client.get(second["Location"]))
    assert _available(merchant_alice) == start - 20000


def test_changed_fee_shows_the_new_quote(alice_client, merchant_alice, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    _page, data = _confirm_form(alice_client, merchant_alice, "100.00")
    data["expected_fee"] = str(int(data["expected_fee"]) + 1)  # what the merchant saw is no longer the fee
    response = _submit(alice_client, data, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    html = _html(response)
    assert "手续费已变化，请确认新的报价后再提交" in html
    assert Withdrawal.objects.count() == 0
    data["expected_fee"] = _hidden(html, "expected_fee")  # the new quote, confirmed
    assert _submit(alice_client, data, django_capture_on_commit_callbacks).status_code == 302
    assert Withdrawal.objects.count() == 1


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "请输入有效的金额"),
        ("-100", "不能为负数"),
        ("100.001", "最多保留两位小数"),
        ("0", "必须大于 0"),
        ("", "请输入提现金额"),
        ("1e3", "请输入有效的金额"),
        ("99999999999999", "金额过大"),
    ],
)
def test_bad_amounts_show_errors_and_move_no_money(alice_client, merchant_alice, raw, message):  # type: ignore[no-untyped-def]
    account = merchant_alice.payout_accounts.get(is_default=True)
    start = wallet_balances(merchant_id=merchant_alice.pk)
    response = _start(alice_client, raw, account.pk)
    assert response.status_code == 200
    assert message in _html(response)
    assert Withdrawal.objects.count() == 0
    assert wallet_balances(merchant_id=merchant_alice.pk) == start


def test_amount_parsing_is_exact():  # type: ignore[no-untyped-def]
    from withdrawals.forms import parse_yuan

    assert parse_yuan("100.50") == 10050
    assert parse_yuan("0.01") == 1
    assert parse_yuan(" ¥1,234.5 ") == 123450
    assert parse_yuan("１００") == 10000  # full-width digits from a Chinese IME
    assert parse_yuan("19.99") == 1999  # float would give 1998.9999…


def test_more_than_available_is_refused_in_plain_words(alice_client, merchant_alice):  # type: ignore[no-untyped-def]
    account = merchant_alice.payout_accounts.get(is_default=True)
    response = _start(alice_client, fen_to_yuan(_available(merchant_alice) + 1, grouping=False), account.pk)
    assert "可提现余额不足" in _html(response)
    assert Withdrawal.objects.count() == 0


def test_quote_endpoint_gives_fees_per_speed(alice_client):  # type: ignore[no-untyped-def]
    body = alice_client.get("/withdraw/quote/", {"amount": "100"}).json()
    assert body["ok"] and set(body["speeds"]) == {"instant", "standard", "t1"}
    assert alice_client.get("/withdraw/quote/", {"amount": "1.234"}).json()["ok"] is False


def test_tampered_or_foreign_confirm_token_is_refused(alice_client, merchant_alice, merchant_mallory):  # type: ignore[no-untyped-def]
    _page, data = _confirm_form(alice_client, merchant_alice, "100.00")
    mallory = Client()
    mallory.login(username="mallory", password="pass-1234")
    response = mallory.post("/withdraw/confirm/", data)
    assert response.status_code == 302 and response["Location"] == "/withdraw/"
    response = alice_client.post("/withdraw/confirm/", {**data, "d": data["d"] + "x"})
    assert response["Location"] == "/withdraw/"
    assert Withdrawal.objects.count() == 0


# --- list, detail, isolation ------------------------------------------------------------------------------
def test_other_merchants_withdrawal_is_404(
    alice_client, merchant_alice, merchant_mallory, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    mallory = Client()
    mallory.login(username="mallory", password="pass-1234")
    _page, data = _confirm_form(mallory, merchant_mallory, "100.00")
    _submit(mallory, data, django_capture_on_commit_callbacks)
    theirs = Withdrawal.objects.get(merchant=merchant_mallory)
    for url in (f"/withdrawals/{theirs.pk}/", f"/withdrawals/{theirs.pk}/progress/"):
        assert alice_client.get(url).status_code == 404
    for action in ("cancel", "verify", "resend", "retry"):
        assert alice_client.post(f"/withdrawals/{theirs.pk}/{action}/", {"code": "123456"}).status_code == 404
    assert theirs.order_no not in _html(alice_client.get("/withdrawals/"))
    mallory_card = merchant_mallory.payout_accounts.first()
    assert alice_client.post(f"/accounts/{mallory_card.pk}/default/").status_code == 404


def test_list_filters_by_status(alice_client, merchant_alice, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    _page, data = _confirm_form(alice_client, merchant_alice, "100.00")
    _submit(alice_client, data, django_capture_on_commit_callbacks)
    w = Withdrawal.objects.get()
    assert w.order_no in _html(alice_client.get("/withdrawals/"))
    assert w.order_no in _html(alice_client.get("/withdrawals/?status=paid"))
    assert w.order_no not in _html(alice_client.get("/withdrawals/?status=failed"))


def test_progress_endpoint(alice_client, merchant_alice, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    _page, data = _confirm_form(alice_client, merchant_alice, "100.00")
    _submit(alice_client, data, django_capture_on_commit_callbacks)
    w = Withdrawal.objects.get()
    body = alice_client.get(f"/withdrawals/{w.pk}/progress/").json()
    assert body["status"] == "paid" and body["final"] is True
    assert "自动审核通过" in body["html"] and "已到账" in body["html"]


def test_failed_withdrawal_shows_plain_reason_and_retry_works(
    alice_client, merchant_alice, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    start = _available(merchant_alice)
    bad_card = card_for(merchant_alice, "11")
    _page, data = _confirm_form(alice_client, merchant_alice, "150.00", account=bad_card)
    response = _submit(alice_client, data, django_capture_on_commit_callbacks)
    failed = Withdrawal.objects.get()
    assert failed.status == Status.FAILED and failed.failure_code == "invalid_account"
    assert _available(merchant_alice) == start
    html = _html(alice_client.get(response["Location"]))
    assert "收款账户不存在或卡号有误，请核对后重试" in html
    assert "一键重试" in html
    good = merchant_alice.payout_accounts.get(is_default=True)
    # the bank said the account does not exist, so the retry suggests the other (default) account
    assert re.search(rf'<option value="{good.pk}" selected>', html)
    retry = {
        "idempotency_key": _hidden(html, "idempotency_key"),
        "expected_fee": _hidden(html, "expected_fee"),
        "payout_account": good.pk,
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/withdrawals/{failed.pk}/retry/", retry)
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/withdrawals/{failed.pk}/retry/", retry)  # double click
    assert Withdrawal.objects.count() == 2
    new = Withdrawal.objects.exclude(pk=failed.pk).get()
    assert response["Location"] == f"/withdrawals/{new.pk}/"
    assert (new.amount, new.speed, new.payout_account_id, new.status) == (
        15000,
        failed.speed,
        good.pk,
        Status.PAID,
    )
    assert new.idempotency_key != failed.idempotency_key
    assert _available(merchant_alice) == start - 15000


def _stepped_up(monkeypatch, alice_client, merchant_alice, capture):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda **kw: RiskDecision(outcome="step_up", score=50.0, reasons=["new_device"]),
    )
    _page, data = _confirm_form(alice_client, merchant_alice, "300.00")
    response = _submit(alice_client, data, capture)
    w = Withdrawal.objects.get()
    assert w.status == Status.AWAITING_VERIFICATION
    return w, response["Location"]


def test_cancel_returns_the_money(alice_client, merchant_alice, monkeypatch, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    start = _available(merchant_alice)
    w, url = _stepped_up(monkeypatch, alice_client, merchant_alice, django_capture_on_commit_callbacks)
    assert wallet_balances(merchant_id=merchant_alice.pk).held == 30000
    assert "取消提现" in _html(alice_client.get(url))
    assert alice_client.get(f"/withdrawals/{w.pk}/cancel/").status_code == 405
    response = alice_client.post(f"/withdrawals/{w.pk}/cancel/")
    assert response["Location"] == url
    assert Withdrawal.objects.get(pk=w.pk).status == Status.CANCELLED
    balances = wallet_balances(merchant_id=merchant_alice.pk)
    assert (balances.available, balances.held) == (start, 0)
    html = _html(alice_client.get(url))
    assert "已取消" in html and "取消提现" not in html
    again = alice_client.post(f"/withdrawals/{w.pk}/cancel/")
    assert "当前状态不允许此操作" in _html(alice_client.get(again["Location"]))


def test_step_up_code_page(alice_client, merchant_alice, monkeypatch, django_capture_on_commit_callbacks, settings):  # type: ignore[no-untyped-def]
    settings.DEMO_MODE = True  # the page shows the phone's inbox in demo mode only
    clock = time_machine.travel(timezone.now(), tick=False)  # "one code a minute" must not depend on how busy we are
    frozen = clock.start()
    try:
        _step_up_code_page(alice_client, merchant_alice, monkeypatch, django_capture_on_commit_callbacks, frozen)
    finally:
        clock.stop()


def _step_up_code_page(alice_client, merchant_alice, monkeypatch, django_capture_on_commit_callbacks, frozen):  # type: ignore[no-untyped-def]
    w, url = _stepped_up(monkeypatch, alice_client, merchant_alice, django_capture_on_commit_callbacks)
    html = _html(alice_client.get(url))
    assert "短信验证" in html and "演示环境短信" in html
    sms = SmsMessage.objects.latest("created_at")
    first = last_sms_code(merchant_alice.kyc.phone)
    assert first in html and first not in sms.text  # the phone has the code, our database a masked text

    wrong = alice_client.post(f"/withdrawals/{w.pk}/verify/", {"code": "000000" if first != "000000" else "111111"})
    assert "验证码错误或已过期" in _html(alice_client.get(wrong["Location"]))
    assert "验证码是 6 位数字" in _html(
        alice_client.get(alice_client.post(f"/withdrawals/{w.pk}/verify/", {"code": "12"})["Location"])
    )

    too_soon = alice_client.post(f"/withdrawals/{w.pk}/resend/")
    assert "秒后再重新获取" in _html(alice_client.get(too_soon["Location"]))  # one code a minute
    frozen.shift(61)
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(f"/withdrawals/{w.pk}/resend/")
    resent = SmsMessage.objects.latest("created_at")
    assert resent.pk != sms.pk
    code = last_sms_code(merchant_alice.kyc.phone)
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(f"/withdrawals/{w.pk}/verify/", {"code": code})
    assert response["Location"] == url
    assert Withdrawal.objects.get(pk=w.pk).status == Status.PAID
    assert "验证成功" in _html(alice_client.get(url))


# --- payout accounts and notifications --------------------------------------------------------------------
def test_add_card_with_luhn_error_then_valid_and_set_default(alice_client, merchant_alice):  # type: ignore[no-untyped-def]
    from channels.sandbox_rules import make_card_number

    response = alice_client.post(
        "/accounts/", {"account_number": "6222021234567890123", "holder_name": "张三", "bank_code": "ICBC"}
    )
    assert response.status_code == 200 and "银行卡号无效（校验位错误）" in _html(response)
    number = make_card_number("", seed=4242)
    response = alice_client.post(
        "/accounts/",
        {"account_number": f"{number[:4]} {number[4:]}", "holder_name": "张三", "bank_code": "CMB"},
    )
    assert response.status_code == 302
    card = payout_account_find(merchant=merchant_alice, account_number=number)
    assert card is not None
    assert not card.is_default
    alice_client.post(f"/accounts/{card.pk}/default/")
    card.refresh_from_db()
    assert card.is_default and merchant_alice.payout_accounts.filter(is_default=True).count() == 1

    response = alice_client.post(
        "/accounts/",
        {"account_number": make_card_number("", seed=99), "holder_name": "王五", "bank_code": "CMB"},
        follow=True,
    )
    assert "收款账户户名与实名认证姓名不一致" in _html(response)


def test_notifications_mark_read(alice_client, merchant_alice, merchant_mallory):  # type: ignore[no-untyped-def]
    mine = Notification.objects.create(merchant=merchant_alice, kind="x", title="提现已到账", body="b")
    theirs = Notification.objects.create(merchant=merchant_mallory, kind="x", title="别人的消息")
    html = _html(alice_client.get("/notifications/"))
    assert "提现已到账" in html and "别人的消息" not in html
    alice_client.post("/notifications/read/", {"id": theirs.pk})
    theirs.refresh_from_db()
    assert theirs.read_at is None
    alice_client.post("/notifications/read/", {"id": mine.pk})
    mine.refresh_from_db()
    assert mine.read_at is not None


def test_posts_need_csrf(merchant_alice):  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.login(username="alice", password="pass-1234")
    account = merchant_alice.payout_accounts.get(is_default=True)
    assert _start(client, "100", account.pk).status_code == 403
