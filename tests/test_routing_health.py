"""Breaker state machine, what counts against a channel, unknown-outcome escalation, /metrics and /healthz."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from channels.base import ChannelRejected, ChannelUnknownOutcome, ErrorAction, PayoutResult, PayoutStatus
from channels.health import channel_call_observe, channel_outcome_record, error_class_for
from channels.models import Channel, ChannelAlert, ChannelBreaker, ChannelOutcome
from channels.services import channel_reserve
from config.metrics import metric_value
from tests.factories import card_for
from withdrawals import payouts
from withdrawals.models import Status, Withdrawal
from withdrawals.services import withdrawal_submit

T = ChannelOutcome.Kind


@pytest.fixture
def ali(db):
    return Channel.objects.create(code="ali", name="ali", adapter="alipay", supported_account_kinds=["bank_card"])


def state(code="ali"):
    return ChannelBreaker.objects.get(channel__code=code).state


@pytest.mark.django_db
def test_breaker_opens_above_budget_with_minimum_sample_then_half_open_probes_close_it(ali, settings):
    settings.CHANNEL_BREAKER_MIN_SAMPLES = 20
    settings.CHANNEL_BREAKER_COOLDOWN_SECONDS = 60
    settings.CHANNEL_BREAKER_HALF_OPEN_PROBES = 2
    t0 = timezone.now()
    for i in range(19):
        channel_outcome_record(channel_code="ali", operation="submit", kind=T.SUCCESS, now=t0 + timedelta(seconds=i))
    channel_outcome_record(channel_code="ali", operation="submit", kind=T.TIMEOUT, now=t0 + timedelta(seconds=19))
    assert state() == ChannelBreaker.State.CLOSED  # 1/20 = 5 %: not above the budget
    channel_outcome_record(
        channel_code="ali", operation="query", kind=T.FAILURE, error_class="transient", now=t0 + timedelta(seconds=20)
    )
    assert state() == ChannelBreaker.State.OPEN  # 2/21 > 5 %
    [alert] = ChannelAlert.objects.filter(kind=ChannelAlert.Kind.BREAKER_OPENED)
    assert alert.channel_code == "ali" and alert.detail["failures"] == 2

    later = t0 + timedelta(seconds=90)
    assert channel_reserve(code="ali", order_no="P1", amount=1, now=later).admitted  # half-open: probe 1
    assert channel_reserve(code="ali", order_no="P2", amount=1, now=later).admitted  # probe 2
    assert channel_reserve(code="ali", order_no="P3", amount=1, now=later).reason.startswith("breaker half-open")
    channel_outcome_record(channel_code="ali", operation="submit", kind=T.FAILURE, error_class="unknown", now=later)
    assert state() == ChannelBreaker.State.OPEN  # a failed probe opens it again (no second alert)
    assert ChannelAlert.objects.filter(kind=ChannelAlert.Kind.BREAKER_OPENED).count() == 1
    again = later + timedelta(seconds=61)
    assert channel_reserve(code="ali", order_no="P4", amount=1, now=again).admitted
    for _ in range(2):
        channel_outcome_record(channel_code="ali", operation="submit", kind=T.SUCCESS, now=again)
    assert state() == ChannelBreaker.State.CLOSED
    assert ChannelAlert.objects.filter(kind=ChannelAlert.Kind.BREAKER_CLOSED).exists()
    # A closed breaker starts with a clean window: one failure now is 1/1 but below the minimum sample.
    channel_outcome_record(channel_code="ali", operation="submit", kind=T.TIMEOUT, now=again)
    assert state() == ChannelBreaker.State.CLOSED


@pytest.mark.django_db
def test_only_channel_side_failures_count(ali):
    assert error_class_for(provider="alipay", provider_code="PAYEE_NOT_EXIST") == "permanent"
    assert error_class_for(provider="alipay", provider_code="SYSTEM_ERROR") == "unknown"
    assert error_class_for(provider="sandbox", provider_code="X", reason_code="name_mismatch") == "permanent"
    assert error_class_for(reason_code="channel_funds_insufficient") == "channel"
    import time

    start = time.monotonic()
    channel_call_observe(
        channel_code="ali",
        operation="submit",
        started=start,
        error=ChannelRejected(
            "no such payee", reason_code="invalid_account", provider_code="PAYEE_NOT_EXIST", action=ErrorAction.FAIL
        ),
    )
    channel_call_observe(
        channel_code="ali",
        operation="submit",
        started=start,
        result=PayoutResult(
            order_no="x", status=PayoutStatus.FAILED, reason_code="name_mismatch", provider_code="PAYEE_USER_INFO_ERROR"
        ),
    )
    channel_call_observe(
        channel_code="ali",
        operation="submit",
        started=start,
        error=ChannelRejected(
            "over",
            reason_code="amount_over_channel_limit",
            provider_code="EXCEED_LIMIT_SM_AMOUNT",
            action=ErrorAction.REROUTE,
        ),
    )
    channel_call_observe(channel_code="ali", operation="submit", started=start, error=ChannelUnknownOutcome("t/o"))
    channel_call_observe(
        channel_code="ali",
        operation="submit",
        started=start,
        error=ChannelRejected(
            "short",
            reason_code="channel_funds_insufficient",
            provider_code="PAYER_BALANCE_NOT_ENOUGH",
            action=ErrorAction.PAUSE_CHANNEL,
        ),
    )
    counted = list(ChannelOutcome.objects.order_by("pk").values_list("counts_against_channel", flat=True))
    assert counted == [False, False, False, True, True]


@pytest.mark.django_db(transaction=True)
def test_unknown_outcome_is_escalated_once_and_keeps_being_queried(merchant_alice, settings, monkeypatch):
    settings.WITHDRAWAL_UNKNOWN_ESCALATE_SECONDS = 60
    queued = []
    monkeypatch.setattr("withdrawals.dispatch.enqueue_query", lambda wid, seq=None, countdown=0: queued.append(wid))
    account = card_for(merchant_alice, "33")  # the answer is lost: unknown
    w = withdrawal_submit(merchant_id=merchant_alice.pk, payout_account_id=account.pk, amount=10_000).withdrawal
    unknown = Withdrawal.objects.get(pk=w.pk)
    assert unknown.status == Status.OUTCOME_UNKNOWN
    assert payouts.payout_escalate_unknown(now=unknown.state_changed_at + timedelta(seconds=59)) == 0  # not yet
    later = unknown.state_changed_at + timedelta(seconds=61)
    assert payouts.payout_escalate_unknown(now=later) == 1
    assert payouts.payout_escalate_unknown(now=later + timedelta(seconds=600)) == 0  # once
    [alert] = ChannelAlert.objects.filter(kind=ChannelAlert.Kind.UNKNOWN_OUTCOME)
    assert alert.subject == w.order_no and alert.channel_code == "sandbox"
    queued.clear()
    counts = payouts.sweep(now=later + timedelta(seconds=600))
    assert counts["query"] == 1 and queued == [w.pk]  # still queried
    payouts.payout_query_run(withdrawal_id=w.pk, seq=Withdrawal.objects.get(pk=w.pk).action_seq)
    w = Withdrawal.objects.get(pk=w.pk)
    assert w.status == Status.PAID  # the query settled it
    assert w.escalated_at == later  # the first escalation, not moved by the second sweep


@pytest.mark.django_db(transaction=True)
def test_metrics_and_health_endpoints(merchant_alice, settings):
    settings.HEALTH_CHECK_GATEWAY = True
    withdrawal_submit(
        merchant_id=merchant_alice.pk,
        payout_account_id=merchant_alice.payout_accounts.get(is_default=True).pk,
        amount=10_000,
    )
    client = Client()
    client.get("/api/v1/wallet")  # unauthenticated: still timed
    text = client.get("/metrics").content.decode()
    assert metric_value(text, "payouts", {"channel": "sandbox", "outcome": "paid"}) == 1
    assert metric_value(text, "withdrawals_in_state", {"status": "outcome_unknown"}) == 0
    assert metric_value(text, "channel_breaker_state", {"channel": "sandbox"}) == 0
    assert metric_value(text, "channel_success_rate", {"channel": "sandbox"}) == 1.0
    assert metric_value(text, "channel_breaker_opened_total", {"channel": "sandbox"}) == 0
    assert "api_request_duration_seconds_bucket" in text
    assert metric_value(text, "celery_queue_depth", {"queue": "celery"}) is not None
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200

    assert client.get("/healthz/live").json() == {"status": "ok"}
    ready = client.get("/healthz/ready")
    assert ready.status_code == 200, ready.json()
    assert ready.json()["checks"]["gateway"]["skipped"]  # only the in-process sandbox channel is enabled
    Channel.objects.create(code="bd", name="bd", adapter="bankdirect", supported_account_kinds=["bank_card"])
    settings.SANDBOX_GATEWAY_URL = "http://127.0.0.1:9"  # nothing listens there
    ready = client.get("/healthz/ready")
    assert ready.status_code == 503 and not ready.json()["checks"]["gateway"]["ok"]
    assert ready.json()["checks"]["database"]["ok"] and ready.json()["checks"]["broker"]["ok"]
