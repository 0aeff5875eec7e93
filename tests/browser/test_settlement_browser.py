"""A merchant in a real Chromium (issue 12): sets an automatic-settlement rule, opens the statement, downloads the
CSV and the receipt of a paid withdrawal. Needs Debian's /usr/bin/chromium; skipped without it."""

from __future__ import annotations

import csv
import io
import os

import pytest

from tests.browser.test_merchant_browser import ARGS, CHROMIUM, SHOTS, _login, page  # noqa: F401  (fixture)

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed (apt-get install chromium)"),
]


def test_rule_statement_csv_and_receipt(page, live_server, merchant_alice, monkeypatch):  # noqa: F811
    from risk.contract import RiskDecision
    from withdrawals.models import SettlementRule, Status, Withdrawal
    from withdrawals.services import withdrawal_submit

    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal", lambda **kw: RiskDecision(outcome="allow", score=1.0)
    )
    account = merchant_alice.payout_accounts.get(is_default=True)
    w = withdrawal_submit(merchant_id=merchant_alice.pk, payout_account_id=account.pk, amount=12_345).withdrawal
    assert Withdrawal.objects.get(pk=w.pk).status == Status.PAID
    base = live_server.url
    _login(page, base)

    # --- the automatic settlement rule ---------------------------------------------------------------------
    page.get_by_role("link", name="自动结算").click()
    page.wait_for_url(f"{base}/settlement/")
    page.check("input[name=schedule][value=weekly]")
    page.fill("input[name=run_at]", "16:30")
    page.select_option("select[name=weekday]", "4")
    page.fill("input[name=keep]", "200")
    page.get_by_role("button", name="保存规则").click()
    page.wait_for_url(f"{base}/settlement/")
    summary = page.inner_text("[data-settlement-summary]")
    assert summary.startswith("每周五 16:30") and "保留 ¥200.00" in summary
    assert page.inner_text("[data-settlement-state]") == "已开启"
    page.screenshot(path=str(SHOTS / "20-settlement.png"), full_page=True)
    page.get_by_role("button", name="暂停自动结算").click()
    page.wait_for_url(f"{base}/settlement/")
    assert page.inner_text("[data-settlement-state]") == "已暂停"
    assert SettlementRule.objects.get(merchant=merchant_alice).enabled is False

    # --- the statement and its CSV -------------------------------------------------------------------------
    page.get_by_role("link", name="资金流水").click()
    page.wait_for_url(f"{base}/statement/")
    rows = page.locator("[data-statement] tbody tr")
    assert rows.count() == 3  # newest first: the payout, its hold, the sale that funded the wallet
    assert (
        rows.nth(0).get_attribute("data-kind") == "post" and rows.nth(2).get_attribute("data-kind") == "sale_settlement"
    )
    page.screenshot(path=str(SHOTS / "21-statement.png"), full_page=True)
    with page.expect_download() as download_info:
        page.click("[data-statement-csv]")
    download = download_info.value
    text = download.path().read_text(encoding="utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert [row[1] for row in lines[1:]] == ["销售结算", "提现冻结", "提现出款"]
    assert download.suggested_filename.startswith("statement-") and download.suggested_filename.endswith(".csv")

    # --- the receipt of the paid withdrawal ----------------------------------------------------------------
    page.goto(f"{base}/withdrawals/{w.pk}/")
    href = page.get_attribute("[data-receipt]", "href")
    response = page.request.get(f"{base}{href}")
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    assert response.body().startswith(b"%PDF-")
