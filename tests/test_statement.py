"""The merchant's statement (资金流水) and the electronic receipt (issue 12): every ledger movement of the
merchant's balances with running balances, filters that never change the balances, a CSV with the same
lines, and a PDF receipt for a paid withdrawal only, for its own merchant only."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from accounts.models import Merchant
from risk.contract import RiskDecision
from tests.factories import MerchantFactory, card_for
from wallets.selectors import merchant_statement
from withdrawals.models import Status, Withdrawal
from withdrawals.receipts import receipt_check_code, receipt_fields
from withdrawals.services import withdrawal_submit

pytestmark = pytest.mark.django_db(transaction=True)
CST = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def story(monkeypatch: pytest.MonkeyPatch, sandbox_channel: Any) -> dict[str, Any]:
    """¥5,000 credited on 2 Nov; ¥1,000 paid (fee ¥2.00) on 3 Nov; ¥300 to a card the bank refuses on 4 Nov."""
    monkeypatch.setattr(
        "withdrawals.services.risk_assess_withdrawal", lambda **kw: RiskDecision(outcome="allow", score=1.0)
    )
    with time_machine.travel(datetime(2026, 11, 2, 9, 0, tzinfo=CST), tick=False) as clock:
        m = cast(Merchant, MerchantFactory(credit=500_000, username="stmt"))
        clock.move_to(datetime(2026, 11, 3, 10, 0, tzinfo=CST))
        account = m.payout_accounts.get(is_default=True)
        paid = withdrawal_submit(merchant_id=m.pk, payout_account_id=account.pk, amount=100_000).withdrawal
        clock.move_to(datetime(2026, 11, 4, 11, 0, tzinfo=CST))
        bad = card_for(m, "11")  # the sandbox refuses cards ending 11 (invalid account)
        failed = withdrawal_submit(merchant_id=m.pk, payout_account_id=bad.pk, amount=30_000).withdrawal
    assert Withdrawal.objects.get(pk=paid.pk).status == Status.PAID
    assert Withdrawal.objects.get(pk=failed.pk).status == Status.FAILED
    client = Client()
    assert client.login(username="stmt", password="pass-1234")
    return {"merchant": m, "paid": paid, "failed": failed, "client": client}


def test_every_movement_with_running_balances(story: dict[str, Any]) -> None:
    m, paid, failed = story["merchant"], story["paid"], story["failed"]
    statement = merchant_statement(merchant_id=m.pk)
    rows = [(x.kind, x.reference, x.available, x.held, x.available_after, x.total_after) for x in statement.lines]
    assert rows == [
        ("sale_settlement", f"sale:{m.pk}:seed-{m.pk}", 500_000, 0, 500_000, 500_000),
        ("hold", f"withdrawal:{paid.pk}:hold", -100_000, 100_000, 400_000, 500_000),
        ("post", f"withdrawal:{paid.pk}:post", 0, -100_000, 400_000, 400_000),
        ("hold", f"withdrawal:{failed.pk}:hold", -30_000, 30_000, 370_000, 400_000),
        ("void", f"withdrawal:{failed.pk}:void", 30_000, -30_000, 400_000, 400_000),
    ]
    assert (statement.closing_available, statement.closing_total) == (400_000, 400_000)
    # A window and a kind filter: the lines shown change, the balances after each line do not.
    since = datetime(2026, 11, 4, 0, 0, tzinfo=CST)
    only_voids = merchant_statement(merchant_id=m.pk, since=since, kinds=["void"])
    assert (only_voids.opening_available, only_voids.opening_total) == (400_000, 400_000)
    assert [(x.kind, x.available_after) for x in only_voids.lines] == [("void", 400_000)]


def test_the_page_and_the_csv_show_the_same_lines(story: dict[str, Any]) -> None:
    client, paid = story["client"], story["paid"]
    html = client.get("/statement/?from=2026-11-01&to=2026-11-30").content.decode()
    assert html.count('<tr data-kind="') == 5
    assert "期末可提现 <strong>¥4,000.00</strong>" in html
    assert f'href="/withdrawals/{paid.pk}/">withdrawal:{paid.pk}:hold</a>' in html
    assert "−¥1,000.00" in html and "+¥300.00" in html
    response = client.get("/statement.csv?from=2026-11-03&to=2026-11-03")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="statement-20261103-20261103.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["时间 (Asia/Shanghai)", "类型"]
    assert [r[0:3] + r[4:] for r in rows[1:]] == [
        ["2026-11-03 10:00:00", "提现冻结", f"withdrawal:{paid.pk}:hold", "0.00", "-1000.00", "1000.00", "0.00",
         "4000.00", "5000.00"],
        ["2026-11-03 10:00:00", "提现出款", f"withdrawal:{paid.pk}:post", "0.00", "0.00", "-1000.00", "0.00",
         "4000.00", "4000.00"],
    ]  # fmt: skip
    bad = client.get("/statement/?from=2026-13-01")
    assert bad.status_code == 200 and "日期格式应为 YYYY-MM-DD" in bad.content.decode()


def test_another_merchants_statement_and_receipts_stay_invisible(story: dict[str, Any]) -> None:
    MerchantFactory(credit=10_000, username="other", id_number="310101198001010018")
    client = Client()
    assert client.login(username="other", password="pass-1234")
    html = client.get("/statement/?from=2026-11-01&to=2026-11-30").content.decode()
    assert f"withdrawal:{story['paid'].pk}" not in html
    assert client.get(f"/withdrawals/{story['paid'].pk}/receipt.pdf").status_code == 404


def test_a_receipt_for_a_paid_withdrawal_only(story: dict[str, Any]) -> None:
    client, paid, failed = story["client"], story["paid"], story["failed"]
    response = client.get(f"/withdrawals/{paid.pk}/receipt.pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-") and len(response.content) > 1000
    assert client.get(f"/withdrawals/{failed.pk}/receipt.pdf").status_code == 404
    w = Withdrawal.objects.get(pk=paid.pk)
    fields = dict(receipt_fields(w))
    assert fields["平台订单号 Order no."] == w.order_no
    assert fields["到账金额 Paid to payee"] == "¥998.00"
    assert fields["手续费 Fee"] == "¥2.00"
    assert fields["到账时间 Paid"] == "2026-11-03 10:00:00"
    holder = w.payout_account.holder_name
    assert fields["收款人 Payee"] == holder[0] + "*" * (len(holder) - 1)
    assert w.payout_account.account_number not in str(fields)
    code = receipt_check_code(w)
    assert len(code) == 16 and code == receipt_check_code(Withdrawal.objects.get(pk=paid.pk))
    w.net_amount += 1  # an edited amount no longer matches the check code
    assert receipt_check_code(w) != code
    assert f'href="/withdrawals/{paid.pk}/receipt.pdf"' in client.get(f"/withdrawals/{paid.pk}/").content.decode()
