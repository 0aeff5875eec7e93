"""A real Celery worker process killed (SIGKILL) in the middle of a webhook delivery loses no event: its claim
expires, the beat job ``webhooks.deliver_due`` finds the delivery due again, and a second worker delivers it.
The receiver, which did get the first request, keeps the event once (de-duplication by event id)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.webhook_support import Receiver
from webhooks.models import WebhookDelivery
from webhooks.services import endpoint_create, event_emit
from webhooks.tasks import deliver_due

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
LEASE_SECONDS = 5


def start_worker() -> subprocess.Popen:
    db = connection.settings_dict
    host, port, user = db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["USER"] or "postgres"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{user}@{host}:{port}/{db['NAME']}",
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "WEBHOOK_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-l", "WARNING"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_until(check, timeout: float, every=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if every is not None:
            every()
        if check():
            return
        time.sleep(0.25)
    raise AssertionError("timed out")


@pytest.fixture
def broker():
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("needs the Redis broker (make test sets it)")
    from config.celery import app

    app.conf.task_always_eager = False
    app.control.purge()
    yield app
    app.control.purge()
    app.conf.task_always_eager = True


def test_a_worker_killed_during_delivery_loses_no_event(broker, merchant_alice):
    arrived, release = threading.Event(), threading.Event()

    def first_hangs(n, event):
        if n == 1:
            arrived.set()
            release.wait(30)  # the first worker is killed while it waits for this answer
        return 200, {}

    receiver = Receiver(behaviour=first_hangs).start()
    first = start_worker()
    second = None
    try:
        _endpoint, receiver.secret = endpoint_create(merchant_id=merchant_alice.pk, url=receiver.url)
        event = event_emit(merchant_id=merchant_alice.pk, type="credit.created", data={"n": 1})
        assert event is not None
        assert arrived.wait(60), "the worker never sent the delivery"
        first.kill()  # SIGKILL mid-send: no answer recorded, the claim stays
        first.wait(timeout=10)
        release.set()
        delivery = WebhookDelivery.objects.get(event=event)
        assert (delivery.status, delivery.attempts) == ("pending", 1) and delivery.lease_token != ""

        second = start_worker()

        def succeeded() -> bool:
            delivery.refresh_from_db()
            return delivery.status == "succeeded"

        # the beat job, as celery beat would send it, until the lease has expired and the delivery is sent
        wait_until(succeeded, timeout=60, every=lambda: deliver_due.delay())
    finally:
        release.set()
        stop(first)
        if second is not None:
            stop(second)
        receiver.stop()
    assert delivery.attempts == 2
    assert [r.verified for r in receiver.received] == [True, True]
    assert len(receiver.events) == 1 and receiver.store.duplicates == 1  # the same event id twice, kept once
    assert delivery.attempt_log.count() == 1  # the killed attempt left no answer, only the claim
