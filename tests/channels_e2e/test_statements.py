"""Statement reconciliation against the gateway's statement file, with planted differences; resolution goes
through the withdrawal services. Also: the routing explanation in the admin and the API, and the ops page."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.services import api_key_create
from channels.models import Channel, StatementDifference, StatementImport
from tests.factories import MerchantFactory, card_for, reviewer
from tests.staff import staff_client
from withdrawals.attempts import routing_explanation
from withdrawals.models import Status, Withdrawal
from withdrawals.reconciliation import (
    reconcile_channels,
    statement_difference_apply_channel,
    statement_difference_resolve,
)
from withdrawals.selectors import withdrawal_ledger_problems
from withdrawals.services import withdrawal_approve, withdrawal_submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.gateway]


def test_planted_differences_are_exactly_what_reconciliation_finds(platform, django_user_model):
    gw, broker = platform["gateway"], platform["broker"]
    Channel.objects.exclude(code="bankdirect").update(enabled=False)
    merchant = MerchantFactory(credit=50_000_000)
    default = merchant.payout_accounts.get(is_default=True)
    ids = [
        withdrawal_submit(
            merchant_id=merchant.pk, payout_account_id=default.pk, amount=30_000 + i, idempotency_key=f"st-{i}"
        ).withdrawal.pk
        for i in range(5)
    ]
    ids.append(
        withdrawal_submit(
            merchant_id=merchant.pk,
            payout_account_id=card_for(merchant, "11").pk,
            amount=30_000,
            idempotency_key="st-bad",
        ).withdrawal.pk
    )
    done = broker.settle(ids)
    assert [w.status for w in done] == [Status.PAID] * 5 + [Status.FAILED]
    a, b, c = done[0], done[1], done[2]
    today = timezone.localdate().isoformat()
    plants = f"/statements/bankdirect/{today}/plants"
    gw.control("POST", plants, {"kind": "drop_row", "order_no": a.order_no})
    gw.control("POST", plants, {"kind": "alter_amount", "order_no": b.order_no, "amount": b.net_amount + 100})
    gw.control("POST", plants, {"kind": "alter_status", "order_no": c.order_no, "status": "RETURNED"})
    gw.control("POST", plants, {"kind": "add_unknown", "order_no": "WDUNKNOWN0001", "amount": 4_200})

    call_command("reconcile_channels", "--date", today)
    statement = StatementImport.objects.get(channel_code="bankdirect")
    found = {(d.order_no, d.kind) for d in statement.differences.all()}
    assert found == {
        (a.order_no, StatementDifference.Kind.MISSING_ON_THEIRS),
        (b.order_no, StatementDifference.Kind.AMOUNT_MISMATCH),
        (c.order_no, StatementDifference.Kind.STATUS_MISMATCH),
        ("WDUNKNOWN0001", StatementDifference.Kind.MISSING_ON_OUR_SIDE),
    }
    assert (statement.line_count, statement.matched_count, statement.difference_count) == (6, 3, 4)

    # The statement says C was returned by the bank: following it reverses the withdrawal through the services.
    diff_c = statement.differences.get(order_no=c.order_no)
    assert statement_difference_apply_channel(difference_id=diff_c.pk, by="ops") == Status.REVERSED
    assert Withdrawal.objects.get(pk=c.pk).status == Status.REVERSED
    # Others cannot be auto-followed: operations investigates and notes what was done.
    diff_a = statement.differences.get(order_no=a.order_no)
    with pytest.raises(Exception, match="invalid_state"):
        statement_difference_apply_channel(difference_id=diff_a.pk, by="ops")
    statement_difference_resolve(difference_id=diff_a.pk, by="ops", note="bank confirmed by phone; statement late")

    # Importing again keeps what was resolved and finds nothing new.
    reconcile_channels(date=timezone.localdate())
    statement = StatementImport.objects.get(pk=statement.pk)
    assert statement.differences.count() == 4
    open_kinds = {d.kind for d in statement.differences.filter(resolved_at__isnull=True)}
    assert open_kinds == {StatementDifference.Kind.AMOUNT_MISMATCH, StatementDifference.Kind.MISSING_ON_OUR_SIDE}
    assert withdrawal_ledger_problems() == []

    # Operations see the differences in the admin, with the resolution buttons.
    admin = django_user_model.objects.create_superuser(username="root", password="pw-12345678")
    client = staff_client(admin)
    page = client.get(f"/admin/payment_channels/statementdifference/{diff_a.pk}/change/")
    assert page.status_code == 200 and "bank confirmed by phone" in page.content.decode()
    listing = client.get("/admin/payment_channels/statementdifference/").content.decode()
    assert b.order_no in listing and "WDUNKNOWN0001" in listing


def test_routing_explanation_in_the_api_and_the_admin_and_the_ops_page(platform, django_user_model):
    broker = platform["broker"]
    merchant = MerchantFactory(credit=50_000_000)
    account = merchant.payout_accounts.get(is_default=True)
    small = withdrawal_submit(
        merchant_id=merchant.pk, payout_account_id=account.pk, amount=20_000, idempotency_key="r-small"
    ).withdrawal
    large = withdrawal_submit(
        merchant_id=merchant.pk, payout_account_id=account.pk, amount=8_000_000, idempotency_key="r-large"
    ).withdrawal
    for name in ("rita", "ron"):  # ¥80,000: two reviewers before any channel sees it
        withdrawal_approve(withdrawal_id=large.pk, reviewer=reviewer(name))
    fast = withdrawal_submit(
        merchant_id=merchant.pk, payout_account_id=account.pk, amount=600_000, speed="instant", idempotency_key="r-fast"
    ).withdrawal
    broker.settle([small.pk, large.pk, fast.pk])
    small, large, fast = (Withdrawal.objects.get(pk=w.pk) for w in (small, large, fast))
    assert (small.channel_code, routing_explanation(small)["policy"]) == ("alipay", "lowest_fee")
    assert (large.channel_code, routing_explanation(large)["policy"]) == ("bankdirect", "large_amount_bank_direct")
    assert (fast.channel_code, routing_explanation(fast)["policy"]) == ("alipay", "instant_fastest")
    assert [(a.number, a.policy) for a in large.payout_attempts.all()] == [(1, "large_amount_bank_direct")]

    # The full explanation is stored with the withdrawal and shown to staff in the admin ...
    routing = routing_explanation(large)
    assert routing["winner"] == "bankdirect" and routing["why"]
    by_code = {c["channel"]: c for c in routing["candidates"]}
    assert by_code["bankdirect"]["components"]["fee"] >= 0 and "score" in by_code["bankdirect"]
    assert "account kind bank_card not supported" in by_code["wechat"]["why_not"]
    assert by_code["alipay"]["why_not"] == ["amount above channel maximum 5000000"]
    # ... while the merchant's API sees the chosen channel's name and arrival only (no costs, quotas, rivals).
    api = Client(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant)}")
    channel = api.get(f"/api/v1/withdrawals/{large.pk}").json()["channel"]
    assert channel == {
        "name": by_code["bankdirect"]["name"],
        "expected_arrival_seconds": by_code["bankdirect"]["arrival"],
    }

    admin = django_user_model.objects.create_superuser(username="root", password="pw-12345678")
    client = staff_client(admin)
    page = client.get(f"/admin/withdrawals/withdrawal/{large.pk}/change/").content.decode()
    assert "路由解释" in page and "大额：银行直连优先" in page and "amount above channel maximum" in page
    ops = client.get("/admin/ops/")
    assert ops.status_code == 200
    body = ops.content.decode()
    assert "alipay" in body and "bankdirect" in body and "<svg" in body
    assert client.get("/admin/").content.decode().count("/admin/payment_channels/opsdashboard/") >= 1
    assert client.get("/admin/payment_channels/opsdashboard/")["Location"] == "/admin/ops/"
