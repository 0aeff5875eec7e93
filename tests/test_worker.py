"""A real Celery worker process over the real broker: payouts happen in the background, and a lost broker
message is recovered by the sweeper."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from tests.factories import MerchantFactory, card_for
from withdrawals import payouts
from withdrawals.models import Status, Withdrawal
from withdrawals.services import withdrawal_submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def real_worker(sandbox_channel):
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs the Redis broker (make test sets it)")
    from config.celery import app

    app.conf.task_always_eager = False
    app.control.purge()
    db = connection.settings_dict
    host, port, user = db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["USER"] or "postgres"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{user}@{host}:{port}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "-l",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    app.conf.task_always_eager = True


def wait_for(withdrawal_id: int, states: set[str], timeout: float = 40.0) -> Withdrawal:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        w = Withdrawal.objects.get(pk=withdrawal_id)
        if w.status in states:
            return w
        time.sleep(0.3)
    raise AssertionError(f"withdrawal {withdrawal_id} stuck in {Withdrawal.objects.get(pk=withdrawal_id).status}")


def test_the_worker_pays_in_the_background_and_refunds_a_failure(real_worker):
    m = MerchantFactory(credit=500_000)
    ok = withdrawal_submit(merchant_id=m.pk, payout_account_id=m.payout_accounts.get(is_default=True).pk, amount=10_000)
    assert ok.withdrawal.status == Status.APPROVED  # the merchant's answer comes before any payout
    bad = withdrawal_submit(merchant_id=m.pk, payout_account_id=card_for(m, "11").pk, amount=20_000)
    assert wait_for(ok.withdrawal.pk, {Status.PAID}).status == Status.PAID
    failed = wait_for(bad.withdrawal.pk, {Status.FAILED})
    assert failed.failure_code == "invalid_account"
    from wallets.selectors import wallet_balances

    assert wallet_balances(merchant_id=m.pk).available == 500_000 - 10_000


def test_a_lost_enqueue_is_recovered_by_the_sweeper(real_worker, monkeypatch, settings):
    from withdrawals import tasks

    m = MerchantFactory(credit=500_000)
    dropped = []
    monkeypatch.setattr(tasks.payout_run, "apply_async", lambda *a, **k: dropped.append(a))  # broker outage
    w = withdrawal_submit(merchant_id=m.pk, payout_account_id=m.payout_accounts.get(is_default=True).pk, amount=10_000)
    assert dropped and Withdrawal.objects.get(pk=w.withdrawal.pk).status == Status.APPROVED
    monkeypatch.undo()
    later = timezone.now() + timedelta(seconds=settings.WITHDRAWAL_REENQUEUE_AFTER_SECONDS + 1)
    counts = payouts.sweep(now=later)  # the sweeper's clock, moved explicitly: no sleep-and-hope
    assert counts["payout"] == 1
    assert wait_for(w.withdrawal.pk, {Status.PAID}).status == Status.PAID


def test_sweeper_flags_a_stuck_withdrawal_once(sandbox_channel, settings, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    m = MerchantFactory(credit=500_000)
    monkeypatch.setattr("withdrawals.dispatch.enqueue_payout", lambda wid, seq=None, countdown=0: None)
    w = withdrawal_submit(merchant_id=m.pk, payout_account_id=m.payout_accounts.get(is_default=True).pk, amount=10_000)
    later = timezone.now() + timedelta(seconds=settings.WITHDRAWAL_STUCK_AFTER_SECONDS + 5)
    assert payouts.sweep(now=later)["stuck"] == 1
    assert payouts.sweep(now=later)["stuck"] == 0
    assert Withdrawal.objects.get(pk=w.withdrawal.pk).stuck_flagged_at is not None
