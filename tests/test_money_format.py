"""The one money formatter (config.money): integer fen in, yuan text out, through Decimal — pinned by value."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from config.money import fen_decimal, fen_to_yuan, yuan_label


@pytest.mark.parametrize(
    ("fen", "grouped", "plain"),
    [
        (0, "0.00", "0.00"),
        (1, "0.01", "0.01"),
        (10, "0.10", "0.10"),
        (99, "0.99", "0.99"),
        (100, "1.00", "1.00"),
        (1999, "19.99", "19.99"),
        (123456, "1,234.56", "1234.56"),
        (123456789, "1,234,567.89", "1234567.89"),
        (-1, "-0.01", "-0.01"),
        (-5, "-0.05", "-0.05"),
        (-123456789, "-1,234,567.89", "-1234567.89"),
        # 2**63 - 1 fen, the largest BigIntegerField: a float would print 92,233,720,368,547,760.00
        (9223372036854775807, "92,233,720,368,547,758.07", "92233720368547758.07"),
        (10**30 + 1, "10,000,000,000,000,000,000,000,000,000.01", "10000000000000000000000000000.01"),
    ],
)
def test_fen_to_yuan_by_value(fen: int, grouped: str, plain: str) -> None:
    assert fen_to_yuan(fen) == grouped
    assert fen_to_yuan(fen, grouping=False) == plain
    assert str(fen_decimal(fen)) == plain.replace(",", "")


def test_exact_where_float_is_not() -> None:
    big = 9223372036854775807
    assert f"{big / 100:,.2f}" != fen_to_yuan(big)  # what the six float divisions used to print


def test_only_integer_fen_is_money() -> None:
    for wrong in (1.5, "100", True, None):
        with pytest.raises(TypeError):
            fen_to_yuan(wrong)  # type: ignore[arg-type]


def test_labels_and_the_page_filter_use_it() -> None:
    assert yuan_label(123456789) == "¥1,234,567.89"
    assert yuan_label(-1) == "¥-0.01"
    assert yuan_label(None) == "—"
    page = Template("{% load merchant_ui %}¥{{ a|yuan }} {{ a|yuan_plain }} [{{ none|yuan }}]")
    assert page.render(Context({"a": 123456789, "none": None})) == "¥1,234,567.89 1234567.89 []"


def test_admin_notifications_and_routing_show_yuan_through_it(settings) -> None:
    from channels.adapters.alipay import yuan as alipay_amount
    from channels.routing import choose_policy
    from config.catalogue import notification_render

    assert notification_render("withdrawal_paid", net_amount=5_000_012).body == "50,000.12 元已打入您的收款账户。"
    settings.ROUTING_LARGE_AMOUNT_FEN = 5_000_000
    assert choose_policy(amount=123456789, speed="standard")[1] == "到账金额 1,234,567.89 元 ≥ 大额阈值 50,000.00 元"
    assert alipay_amount(1) == "0.01" and alipay_amount(123456789) == "1234567.89"  # Alipay's trans_amount


def test_the_money_library_for_any_template() -> None:
    page = Template("{% load money %}{{ a|yuan }} {{ a|yuan_plain }}")
    assert page.render(Context({"a": -123456789})) == "-1,234,567.89 -1234567.89"


@pytest.mark.django_db
def test_the_ops_page_shows_a_channels_quota_in_yuan(sandbox_channel) -> None:
    from django.utils import timezone

    from channels.models import ChannelQuotaUsage
    from tests.staff import staff_client, staff_user

    ChannelQuotaUsage.objects.create(channel=sandbox_channel, day=timezone.localdate(), amount=123456789, count=3)
    html = staff_client(staff_user("ops-admin", None)).get("/admin/ops/").content.decode()
    assert "3 笔<br>1,234,567.89 元" in html  # was widthratio: float division rounded to 1234568


def test_a_withdrawal_names_its_amount_exactly() -> None:
    from withdrawals.models import Withdrawal

    assert str(Withdrawal(order_no="W1", amount=9223372036854775807, status="paid")) == "W1 92233720368547758.07 已到账"
