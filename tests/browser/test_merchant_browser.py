"""A merchant in a real Chromium: log in, withdraw in two steps, watch it arrive, see a failure explained.

Needs Debian's /usr/bin/chromium (never a browser downloaded by ``playwright install``); skipped without it.
Celery is eager, so a payout runs when the submit commits, inside the live server's thread.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

# Playwright's sync API runs an event loop in this thread; the ORM calls the test itself makes are fine.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path("/tmp/shots")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture
def page(live_server, transactional_db):
    from django.db import connections
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        context = browser.new_context(
            locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1100, "height": 900}
        )
        context.set_default_timeout(15_000)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        yield pg
        context.close()
        browser.close()
        # ORM calls made inside sync_playwright() (a running event loop) get a connection of their own
        # context; close it here or it outlives the test and blocks dropping the test database.
        connections.close_all()
        assert not errors, f"JavaScript errors on the pages: {errors}"


def _login(page, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pass-1234")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _withdraw(page, base: str, amount: str, account_text: str | None = None):
    """Step 1 and step 2; returns (fee text, net text) as the confirm page showed them."""
    page.goto(f"{base}/withdraw/")
    page.fill("#id_amount", amount)
    if account_text:
        page.locator("label.choice", has_text=account_text).click()
    page.get_by_role("button", name="下一步：确认").click()
    page.wait_for_url(re.compile(r"/withdraw/confirm/\?d="))
    fee, net = page.inner_text("[data-fee]"), page.inner_text("[data-net]")
    return fee, net


def _balance(page, base: str, kind: str) -> str:
    page.goto(f"{base}/")
    return page.inner_text(f"[data-balance={kind}]")


def test_merchant_withdraws_and_sees_failure_explained(page, live_server, merchant_alice, monkeypatch):
    from channels.sandbox_rules import make_card_number
    from config.money import fen_to_yuan
    from wallets.selectors import wallet_balances
    from withdrawals.models import Status, Withdrawal

    start = wallet_balances(merchant_id=merchant_alice.pk).available
    base = live_server.url
    _login(page, base)
    assert page.inner_text("[data-balance=available]") == f"¥{fen_to_yuan(start)}"
    assert re.fullmatch(r"fp[0-9a-f]{28}", next(c["value"] for c in page.context.cookies() if c["name"] == "dfp"))
    page.screenshot(path=str(SHOTS / "01-dashboard.png"), full_page=True)

    # --- a good withdrawal, in two steps -----------------------------------------------------------------
    page.goto(f"{base}/withdraw/")
    page.fill("#id_amount", "100.00")
    # Locator waits, not wait_for_function: that evaluates a string in the page, which the CSP (rightly) refuses.
    expect(page.locator("[data-fee-for=instant]")).to_contain_text("手续费 ¥")
    page.screenshot(path=str(SHOTS / "02-withdraw-step1.png"), full_page=True)
    fee, net = _withdraw(page, base, "100.00")
    assert fee.startswith("¥") and net.startswith("¥")
    assert page.inner_text("[data-amount]") == "¥100.00"
    page.screenshot(path=str(SHOTS / "03-confirm.png"), full_page=True)
    page.get_by_role("button", name="确认提现").click()
    page.wait_for_url(re.compile(r"/withdrawals/\d+/$"))
    assert "申请成功" in page.inner_text(".messages")
    assert page.inner_text("[data-status-label]") == "已到账"
    page.screenshot(path=str(SHOTS / "04-detail-paid.png"), full_page=True)
    paid = Withdrawal.objects.get()
    assert paid.status == Status.PAID and f"¥{fen_to_yuan(paid.fee)}" == fee
    assert paid.device_id.startswith("fp")  # the page script's fingerprint reached the service

    # --- bind a card the sandbox bank rejects ("11": the account does not exist) ---------------------------
    number = make_card_number("11", seed=20240611)
    page.goto(f"{base}/accounts/")
    page.fill("#id_account_number", "12345")
    page.click("form.card button[type=submit]")
    assert "银行卡号无效" in page.inner_text("form.card")
    page.fill("#id_account_number", number)
    page.select_option("#id_bank_code", "CMB")
    page.click("form.card button[type=submit]")
    assert "已添加银行卡" in page.inner_text(".messages")

    masked = f"{number[:4]} **** **** {number[-4:]}"
    # Risk rightly asks for a step-up when money goes to a card bound a minute ago (the account-takeover
    # pattern; tests/test_security_stepup.py covers that page): here the bank's refusal is what is shown.
    from risk.contract import RiskDecision

    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal", lambda **kw: RiskDecision(outcome="allow", score=1.0)
    )
    _withdraw(page, base, "100.00", account_text=masked)
    page.get_by_role("button", name="确认提现").click()
    page.wait_for_url(re.compile(r"/withdrawals/\d+/$"))
    assert page.inner_text("[data-status-label]") == "失败"
    assert "收款账户不存在或卡号有误，请核对后重试" in page.inner_text("[data-failure]")
    assert page.get_by_role("button", name="重新提现").is_visible()
    page.screenshot(path=str(SHOTS / "05-detail-failed.png"), full_page=True)

    # the money of the failed one is back: only the paid 100.00 left the available balance
    assert _balance(page, base, "available") == f"¥{fen_to_yuan(start - 10000)}"
    assert page.inner_text("[data-balance=held]") == "¥0.00"

    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{base}/withdraw/")
    page.screenshot(path=str(SHOTS / "07-phone-withdraw.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), "sideways scrolling"


def test_detail_page_follows_the_withdrawal_live(page, live_server, merchant_alice, monkeypatch, settings):
    """Step-up with the demo SMS box, then a change made elsewhere shows up without touching the page."""
    settings.DEMO_MODE = True  # the box exists only in demo mode
    from risk.contract import RiskDecision
    from withdrawals.models import Status, Withdrawal
    from withdrawals.services import withdrawal_cancel

    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal",
        lambda **kw: RiskDecision(outcome="step_up", score=50.0, reasons=["new_device"]),
    )
    base = live_server.url
    _login(page, base)

    _withdraw(page, base, "50.00")
    page.get_by_role("button", name="确认提现").click()
    page.wait_for_url(re.compile(r"/withdrawals/\d+/$"))
    assert "演示环境短信" in page.inner_text("[data-dev-sms]")
    code = re.search(r"验证码为 (\d{6})", page.inner_text("[data-dev-sms]")).group(1)
    page.screenshot(path=str(SHOTS / "06-stepup.png"), full_page=True)
    page.fill("#id_code", code)
    page.get_by_role("button", name="验证并出款").click()
    page.wait_for_load_state()
    assert "验证成功" in page.inner_text(".messages")
    assert page.inner_text("[data-status-label]") == "已到账"

    _withdraw(page, base, "60.00")
    page.get_by_role("button", name="确认提现").click()
    page.wait_for_url(re.compile(r"/withdrawals/\d+/$"))
    pending = Withdrawal.objects.get(status=Status.AWAITING_VERIFICATION)
    # Cancelled from somewhere else (another tab, support): the open page notices on its own.
    withdrawal_cancel(withdrawal_id=pending.pk, merchant_id=merchant_alice.pk)
    expect(page.locator("[data-status-label]")).to_have_text("已取消", timeout=10_000)
    assert page.locator("[data-dev-sms]").count() == 0
