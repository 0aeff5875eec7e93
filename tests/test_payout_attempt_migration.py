"""The routing JSON bag of withdrawals made before issue 9 is carried into the payout attempt table and columns by
migration withdrawals 0008: run the migrations back to 0006, write a bag as the old code did, migrate forward."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.factories import MerchantFactory
from withdrawals.attempts import excluded_channels, routing_explanation
from withdrawals.models import Withdrawal
from withdrawals.services import withdrawal_submit

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("withdrawals", "0006_channel_last_sent_at")]

OLD_BAG: dict[str, Any] = {
    "policy": "lowest_fee",
    "policy_text": "费用最低",
    "winner": "chan_b",
    "why": "费用最低的可用通道",
    "candidates": [
        {"channel": "chan_a", "name": "通道A", "arrival": 60, "cost": 100, "eligible": False},
        {"channel": "chan_b", "name": "通道B", "arrival": 7200, "cost": 80, "eligible": True},
    ],
    "excluded": ["chan_a"],
    "history": [{"channel": "chan_a", "code": "channel_unavailable", "action": "reroute"}],
    "admission_refused": {"chan_c": "quota"},
    "unknown_count": 2,
    "poll_count": 3,
    "awaiting_payee_since": "2026-11-20T08:00:00+00:00",
    "escalated_at": "2026-11-20T09:30:00+00:00",
}


def migrate(targets: list[tuple[str, str]] | None = None) -> None:
    """To ``targets``, or forward to the latest migration of every app (what the rest of the suite expects)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets if targets is not None else executor.loader.graph.leaf_nodes())


def test_the_routing_bag_becomes_an_attempt_answers_and_columns(monkeypatch, sandbox_channel):
    monkeypatch.setattr("withdrawals.services.dispatch.enqueue_payout", lambda *a, **k: None)
    m = MerchantFactory(credit=500_000)
    account = m.payout_accounts.get(is_default=True)
    w = withdrawal_submit(merchant_id=m.pk, payout_account_id=account.pk, amount=10_000).withdrawal
    untouched = withdrawal_submit(merchant_id=m.pk, payout_account_id=account.pk, amount=12_000).withdrawal
    try:
        migrate(BEFORE)
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE withdrawals_withdrawal SET routing = %s, channel_code = 'chan_b' WHERE id = %s",
                [json.dumps(OLD_BAG, ensure_ascii=False), w.pk],
            )
    finally:
        migrate()
    w = Withdrawal.objects.get(pk=w.pk)
    [attempt] = w.payout_attempts.all()
    assert (attempt.number, attempt.channel_code, attempt.channel_name, attempt.expected_arrival_seconds) == (
        1,
        "chan_b",
        "通道B",
        7200,
    )
    assert (attempt.order_no, attempt.amount, attempt.policy) == (w.order_no, w.net_amount, "lowest_fee")
    assert attempt.admission_refused == {"chan_c": "quota"}
    assert w.current_attempt_id == attempt.pk
    assert routing_explanation(w)["why"] == "费用最低的可用通道"
    assert excluded_channels(w) == ("chan_a",)
    assert (w.unknown_count, w.poll_count) == (2, 3)
    assert w.awaiting_payee_since is not None and w.awaiting_payee_since.isoformat() == "2026-11-20T08:00:00+00:00"
    assert w.escalated_at is not None and w.escalated_at.isoformat() == "2026-11-20T09:30:00+00:00"
    other = Withdrawal.objects.get(pk=untouched.pk)
    assert (other.current_attempt_id, other.payout_attempts.count(), other.payout_answers.count()) == (None, 0, 0)
