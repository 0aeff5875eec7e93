"""Webhooks end to end: real HTTP receivers (http.server in a thread) that verify every delivery with
docs/example_client.py, the real Celery task code (eager: the after-commit task and the beat job
``webhooks.deliver_due``), PostgreSQL transactions and row locks, and a clock moved by time-machine."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import IntegrityError, InternalError, connection, transaction

from accounts.models import Notification
from config.catalogue import CODES, NOTIFICATIONS
from config.errors import DomainError
from tests.webhook_support import Receiver, example_client
from wallets.services import merchant_sale_settle
from webhooks import services
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webhooks.services import delivery_claim, endpoint_create, endpoint_url_check, event_emit
from webhooks.tasks import deliver_due
from withdrawals.models import Status, Withdrawal
from withdrawals.services import withdrawal_submit

pytestmark = pytest.mark.django_db(transaction=True)
START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def register(merchant, receiver: Receiver, **kw) -> WebhookEndpoint:
    endpoint, secret = endpoint_create(merchant_id=merchant.pk, url=receiver.url, **kw)
    receiver.secret = secret
    return endpoint


def submit(merchant, amount=10_000) -> Withdrawal:
    account = merchant.payout_accounts.get(is_default=True)
    w = withdrawal_submit(merchant_id=merchant.pk, payout_account_id=account.pk, amount=amount).withdrawal
    return Withdrawal.objects.get(pk=w.pk)


def run_beat(traveller, *, seconds: int, step: int = 1) -> None:
    """The beat job once per ``step`` seconds of a moving clock, for ``seconds`` (no sleeping)."""
    for _ in range(seconds // step):
        traveller.shift(timedelta(seconds=step))
        deliver_due.delay()


# --- signed, verified by the docs' client ---------------------------------------------------------------------
def test_every_state_change_of_a_withdrawal_arrives_signed_and_verifies_with_the_example_client(
    merchant_alice, receiver
):
    endpoint = register(merchant_alice, receiver)
    w = submit(merchant_alice)
    assert w.status == Status.PAID

    assert [r.error for r in receiver.received] == ["", "", "", ""]
    assert all(r.verified and r.status == 200 for r in receiver.received)
    by_status = {e["data"]["status"]: e for e in receiver.events.values()}
    assert sorted(by_status) == ["approved", "paid", "processing", "submitted"]
    assert {e["type"] for e in receiver.events.values()} == {
        "withdrawal.submitted",
        "withdrawal.approved",
        "withdrawal.processing",
        "withdrawal.paid",
    }
    paid = by_status["paid"]
    data = paid["data"]
    assert {k: data[k] for k in ("object", "id", "status", "previous_status", "amount", "amount_decimal")} == {
        "object": "withdrawal",
        "id": w.pk,
        "status": "paid",
        "previous_status": "processing",
        "amount": 10_000,
        "amount_decimal": "100.00",
    }
    assert (data["fee"], data["net_amount"], data["currency"], data["failure_code"]) == (
        w.fee,
        10_000 - w.fee,
        "CNY",
        None,
    )
    assert data["fee_decimal"] == f"{w.fee // 100}.{w.fee % 100:02d}"
    assert by_status["submitted"]["data"]["previous_status"] is None
    for stamp in (paid["created_at"], data["created_at"], data["updated_at"]):
        assert stamp.endswith("Z") and datetime.fromisoformat(stamp).utcoffset() == timedelta(0)
    assert datetime.fromisoformat(data["created_at"]) == w.created_at.replace(microsecond=0)
    assert paid["merchant_id"] == merchant_alice.pk
    # the headers: the event id for de-duplication, the type, and the signature
    one = next(r for r in receiver.received if r.event_id == paid["id"])
    assert one.headers["Webhook-Id"] == paid["id"]
    assert one.headers["Webhook-Event"] == "withdrawal.paid"
    assert one.headers["Webhook-Signature"].startswith("t=") and ",v1=" in one.headers["Webhook-Signature"]
    assert json.loads(one.body) == paid
    assert WebhookEvent.objects.filter(merchant=merchant_alice).count() == 4
    assert set(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("status", "attempts")) == {
        ("succeeded", 1)
    }


def test_the_verifier_refuses_a_changed_body_another_secret_and_an_old_timestamp(merchant_alice, receiver):
    register(merchant_alice, receiver)
    event_emit(merchant_id=merchant_alice.pk, type="credit.created", data={"object": "credit", "amount": 5})
    (sent,) = receiver.received
    client = example_client()
    assert client.verify_webhook(receiver.secret, sent.headers, sent.body)["data"] == {"object": "credit", "amount": 5}
    t = int(sent.headers["Webhook-Signature"].split(",")[0][2:])
    failures = {}
    for name, args in {
        "body": (receiver.secret, sent.headers, sent.body.replace(b'"amount":5', b'"amount":6')),
        "secret": ("whsec_another", sent.headers, sent.body),
        "old": (receiver.secret, sent.headers, sent.body),
        "id": (receiver.secret, {**sent.headers, "Webhook-Id": "0" * 36}, sent.body),
        "missing": (receiver.secret, {"Webhook-Id": sent.event_id}, sent.body),
    }.items():
        with pytest.raises(client.WebhookVerificationError) as caught:
            client.verify_webhook(*args, now=t + 301 if name == "old" else None)
        failures[name] = str(caught.value)
    assert failures == {
        "body": "signature does not match",
        "secret": "signature does not match",
        "old": f"timestamp {t} is outside the 300 s tolerance",
        "id": "Webhook-Id does not match the event id",
        "missing": "missing Webhook-Signature header",
    }
    # the server side computes the same signature as the documented recipe
    assert (
        services.signature_header(secret=receiver.secret, timestamp=t, body=sent.body)
        == (sent.headers["Webhook-Signature"])
    )


# --- retries: a receiver that fails 3 times, then succeeds ------------------------------------------------------
def test_a_receiver_failing_three_times_then_succeeding_gets_each_event_exactly_once(merchant_alice, receiver):
    receiver.behaviour = lambda n, event: (500, {}) if n <= 3 else (200, {})
    register(merchant_alice, receiver)
    with time_machine.travel(START, tick=False) as traveller:
        w = submit(merchant_alice)
        assert w.status == Status.PAID
        assert len(receiver.received) == 4 and {r.status for r in receiver.received} == {500}
        run_beat(traveller, seconds=120)
    assert len(receiver.events) == 4  # each event once
    assert sorted(receiver.per_event.values()) == [4, 4, 4, 4]  # three refusals and the success
    deliveries = WebhookDelivery.objects.filter(event__merchant=merchant_alice)
    assert sorted(deliveries.values_list("status", "attempts")) == [("succeeded", 4)] * 4
    # the backoff: 10 s, then 20 s, then 40 s after each failure (10 s doubling)
    for delivery in deliveries:
        times = list(delivery.attempt_log.order_by("number").values_list("started_at", flat=True))
        assert [int((b - a).total_seconds()) for a, b in itertools.pairwise(times)] == [10, 20, 40]
        assert list(delivery.attempt_log.order_by("number").values_list("status_code", "error_code")) == [
            (500, "webhook_http_error"),
            (500, "webhook_http_error"),
            (500, "webhook_http_error"),
            (200, ""),
        ]
    # a replay sends the same event id again: the receiver sees a duplicate and keeps one
    services.delivery_replay(delivery_id=deliveries.first().pk)
    assert len(receiver.received) == 17 and receiver.store.duplicates == 1 and len(receiver.events) == 4
    endpoint = WebhookEndpoint.objects.get(merchant=merchant_alice)
    assert (endpoint.enabled, endpoint.consecutive_failures) == (True, 0)


def test_retry_delays_double_from_ten_seconds_and_stop_at_an_hour(settings):
    assert [int(services.retry_delay(n).total_seconds()) for n in range(1, 13)] == [
        10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600, 3600,
    ]  # fmt: skip


# --- the outbox commits with the state change -----------------------------------------------------------------
class Rollback(Exception):
    pass


def test_an_event_emitted_in_a_transaction_that_rolls_back_is_never_delivered(merchant_alice, receiver):
    register(merchant_alice, receiver)
    with time_machine.travel(START, tick=False) as traveller:
        with pytest.raises(Rollback), transaction.atomic():
            merchant_sale_settle(merchant_id=merchant_alice.pk, order_ref="rolled-back", amount=3_000)
            assert WebhookEvent.objects.filter(type="credit.created").count() == 1  # inside: written
            raise Rollback
        with pytest.raises(Rollback), transaction.atomic():
            event_emit(merchant_id=merchant_alice.pk, type="withdrawal.paid", data={"id": 1})
            raise Rollback
        run_beat(traveller, seconds=3 * 3600, step=600)
    assert receiver.received == []
    assert (WebhookEvent.objects.count(), WebhookDelivery.objects.count()) == (0, 0)


def test_a_sale_credit_is_one_event_however_often_it_is_settled(merchant_alice, receiver):
    register(merchant_alice, receiver, event_types=["credit.created"])
    for _ in range(2):
        merchant_sale_settle(merchant_id=merchant_alice.pk, order_ref="order-77", amount=12_345)
    assert len(receiver.received) == 1
    (event,) = receiver.events.values()
    assert event["type"] == "credit.created"
    assert {k: event["data"][k] for k in ("object", "order_ref", "amount", "amount_decimal", "currency")} == {
        "object": "credit",
        "order_ref": "order-77",
        "amount": 12_345,
        "amount_decimal": "123.45",
        "currency": "CNY",
    }
    submit(merchant_alice)  # not subscribed to withdrawal events: nothing sent, nothing written
    assert len(receiver.received) == 1
    assert WebhookEvent.objects.filter(type__startswith="withdrawal.").count() == 0


def test_the_outbox_and_the_attempt_log_are_append_only_in_the_database(merchant_alice, receiver):
    register(merchant_alice, receiver)
    event = event_emit(merchant_id=merchant_alice.pk, type="credit.created", data={"a": 1})
    assert event is not None
    for sql, params in [
        ("UPDATE webhooks_webhookevent SET type = 'x' WHERE id = %s", [event.pk]),
        ("DELETE FROM webhooks_webhookevent WHERE id = %s", [event.pk]),
        ("UPDATE webhooks_webhookattempt SET succeeded = false", []),
    ]:
        with pytest.raises((IntegrityError, InternalError)) as caught, transaction.atomic():
            connection.cursor().execute(sql, params)
        assert "append-only" in str(caught.value)
    assert WebhookAttempt.objects.get().succeeded is True


# --- a worker that dies holding a delivery ----------------------------------------------------------------------
def test_a_delivery_claimed_by_a_worker_that_dies_is_delivered_later(merchant_alice, receiver, monkeypatch, settings):
    register(merchant_alice, receiver)
    with time_machine.travel(START, tick=False) as traveller:
        with monkeypatch.context() as lost:  # the after-commit message is lost too: only the beat job is left
            lost.setattr(services, "deliveries_enqueue", lambda ids: None)
            event = event_emit(merchant_id=merchant_alice.pk, type="credit.created", data={"n": 1})
        delivery = WebhookDelivery.objects.get(event=event)
        claim = delivery_claim(delivery_id=delivery.pk)  # a worker takes it ... and is killed before the POST
        assert claim is not None and claim.attempt == 1
        assert delivery_claim(delivery_id=delivery.pk) is None  # held: a second worker does nothing
        run_beat(traveller, seconds=settings.WEBHOOK_LEASE_SECONDS - 1)
        assert receiver.received == []  # the claim still holds
        run_beat(traveller, seconds=2)  # it has expired: the beat job sends it
        assert len(receiver.received) == 1 and len(receiver.events) == 1
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("succeeded", 2)
        # the dead worker's late answer changes nothing
        late = services.delivery_post(claim)
        assert services.delivery_attempt_record(claim=claim, result=late) == "stale"
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert receiver.store.duplicates == 1 and len(receiver.events) == 1  # at least once; de-duplicated by id


# --- an endpoint that keeps failing ---------------------------------------------------------------------------
def test_an_endpoint_failing_for_a_day_is_disabled_with_one_notification(merchant_alice, receiver, settings):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 10
    receiver.behaviour = lambda n, event: (503, {})
    endpoint = register(merchant_alice, receiver)
    with time_machine.travel(START, tick=False) as traveller:
        event_emit(merchant_id=merchant_alice.pk, type="credit.created", data={"n": 1})
        run_beat(traveller, seconds=23 * 3600, step=120)
        endpoint.refresh_from_db()
        assert endpoint.enabled is True and endpoint.consecutive_failures >= 10  # many failures, not a day yet
        run_beat(traveller, seconds=3 * 3600, step=120)
        endpoint.refresh_from_db()
        sent = len(receiver.received)
        run_beat(traveller, seconds=6 * 3600, step=600)
    assert endpoint.enabled is False and endpoint.disabled_at is not None
    assert len(receiver.received) == sent  # nothing more is sent to a disabled endpoint
    # 10 s doubling to the hour cap: 11 attempts in the first 2 h 5 min, then one an hour, over 24 h
    assert 30 <= sent <= 34
    notes = Notification.objects.filter(merchant=merchant_alice, kind="webhook_endpoint_disabled")
    assert notes.count() == 1
    assert endpoint.url in notes.get().body and notes.get().link == "/webhooks/"
    with pytest.raises(DomainError) as caught:
        services.endpoint_test_send(endpoint_id=endpoint.pk)
    assert caught.value.code == "webhook_endpoint_disabled"
    # the merchant fixes it and enables it again: a clean failure count
    services.endpoint_enable(endpoint_id=endpoint.pk)
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.consecutive_failures) == (True, 0)


# --- where the platform sends: http(s) only, no redirects, no private addresses in production -----------------
def test_urls_that_are_not_http_or_carry_credentials_are_refused():
    for url in ("ftp://example.com/x", "javascript:alert(1)", "file:///etc/passwd", "http://u:p@example.com/", ""):
        with pytest.raises(DomainError) as caught:
            endpoint_url_check(url)
        assert caught.value.code == "webhook_url_invalid", url


def test_production_refuses_plain_http_and_private_or_loopback_addresses(settings, merchant_alice, receiver):
    endpoint = register(merchant_alice, receiver)  # registered while loopback was allowed (development)
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(DomainError) as caught:
        endpoint_url_check("http://example.com/hook")
    assert caught.value.code == "webhook_url_invalid"
    for url in (
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
    ):
        with pytest.raises(DomainError) as caught:
            endpoint_url_check(url)
        assert caught.value.code == "webhook_url_not_allowed", url
    assert endpoint_url_check("https://hooks.example.com/kamen") == "https://hooks.example.com/kamen"
    # and again at every attempt: the stored loopback URL is not called
    delivery = services.endpoint_test_send(endpoint_id=endpoint.pk)
    delivery.refresh_from_db()
    assert receiver.received == []
    assert (delivery.status, delivery.last_error_code) == ("pending", "webhook_address_not_allowed")


def test_a_redirect_is_never_followed(merchant_alice, receiver):
    elsewhere = Receiver().start()
    try:
        receiver.behaviour = lambda n, event: (302, {"Location": elsewhere.url})
        endpoint = register(merchant_alice, receiver)
        delivery = services.endpoint_test_send(endpoint_id=endpoint.pk)
    finally:
        elsewhere.stop()
    delivery.refresh_from_db()
    assert elsewhere.received == [] and len(receiver.received) == 1
    assert (delivery.status, delivery.last_status_code, delivery.last_error_code) == (
        "pending",
        302,
        "webhook_redirect_refused",
    )


def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(merchant_alice, receiver, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    gate = __import__("threading").Event()

    def slow(n, event):
        gate.wait(5)
        return 200, {}

    receiver.behaviour = slow
    endpoint = register(merchant_alice, receiver)
    try:
        delivery = services.endpoint_test_send(endpoint_id=endpoint.pk)
    finally:
        gate.set()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_status_code, delivery.last_error_code) == (
        "pending",
        None,
        "webhook_timeout",
    )


def test_every_attempt_error_code_and_the_notification_are_in_the_catalogue():
    assert sorted(c for c in services.ATTEMPT_ERROR_CODES if c not in CODES) == []
    assert "webhook_endpoint_disabled" in NOTIFICATIONS
    assert set(services.EVENT_TYPES) >= {f"withdrawal.{s}" for s in Status.values}


def test_two_workers_claiming_one_delivery_at_once_get_it_once(merchant_alice, receiver, monkeypatch):
    import threading

    from django.db import connections

    register(merchant_alice, receiver)
    with monkeypatch.context() as lost:
        lost.setattr(services, "deliveries_enqueue", lambda ids: None)
        event = event_emit(merchant_id=merchant_alice.pk, type="credit.created", data={"n": 1})
    delivery = WebhookDelivery.objects.get(event=event)
    barrier = threading.Barrier(4)
    claims = []

    def worker() -> None:
        try:
            barrier.wait()
            claims.append(delivery_claim(delivery_id=delivery.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [c for c in claims if c is not None]
    assert len(claims) == 4 and len(won) == 1 and won[0].attempt == 1
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.lease_token) == (1, won[0].token)


def test_a_failed_withdrawal_says_why_in_its_event(merchant_alice, receiver):
    from tests.factories import card_for

    register(merchant_alice, receiver, event_types=["withdrawal.failed"])
    account = card_for(merchant_alice, "11")  # the sandbox says: invalid account
    withdrawal_submit(merchant_id=merchant_alice.pk, payout_account_id=account.pk, amount=10_000)
    (event,) = receiver.events.values()
    assert (event["type"], event["data"]["status"], event["data"]["failure_code"]) == (
        "withdrawal.failed",
        "failed",
        "invalid_account",
    )
    assert len(receiver.received) == 1  # the other changes of status are not subscribed


def test_the_example_clients_own_receiver_takes_each_event_once_and_refuses_a_forgery(merchant_alice):
    import threading
    import urllib.error
    import urllib.request
    from http.server import ThreadingHTTPServer

    client = example_client()
    store, printed = client.EventStore(), []
    server = ThreadingHTTPServer(("127.0.0.1", 0), client.WebhookReceiver)  # configured once the secret is known
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        endpoint, secret = endpoint_create(merchant_id=merchant_alice.pk, url=url)
        server.RequestHandlerClass = client.WebhookReceiver.configured(secret, store, printed.append)
        delivery = services.endpoint_test_send(endpoint_id=endpoint.pk)
        services.delivery_replay(delivery_id=delivery.pk)  # the same event again
        forged = urllib.request.Request(
            url,
            data=b'{"id":"x","type":"withdrawal.paid"}',
            headers={"Webhook-Id": "x", "Webhook-Signature": "t=1,v1=00"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert refused.value.code == 400
    assert len(store.events) == 1 and store.duplicates == 1
    assert [e["type"] for e in printed] == ["webhook.test"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


def test_a_sale_in_its_freeze_window_is_credit_created_pending_then_credit_available(merchant_alice, receiver):
    from wallets.services import release_due

    merchant_alice.settlement_freeze_days = 2
    merchant_alice.save(update_fields=["settlement_freeze_days"])
    register(merchant_alice, receiver, event_types=["credit.created", "credit.available"])
    with time_machine.travel(START, tick=False) as traveller:
        merchant_sale_settle(merchant_id=merchant_alice.pk, order_ref="frozen-1", amount=8_800)
        traveller.shift(timedelta(days=2, hours=1))
        assert release_due().released == 1
        assert release_due().released == 0  # released once, one event
    events = sorted(receiver.events.values(), key=lambda e: e["created_at"])
    assert [(e["type"], e["data"]["status"], e["data"]["order_ref"], e["data"]["amount"]) for e in events] == [
        ("credit.created", "pending", "frozen-1", 8_800),
        ("credit.available", "available", "frozen-1", 8_800),
    ]
    assert events[0]["data"]["available_at"] == "2026-12-03T02:00:00Z"
    assert events[1]["created_at"] == "2026-12-03T03:00:00Z"
    assert events[0]["data"]["id"] == events[1]["data"]["id"]  # the same credit
