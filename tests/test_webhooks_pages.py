"""Webhooks on the merchant pages and in the admin, over HTTP: the secret shown once, the test event, the
delivery log and replay; another merchant's endpoints and deliveries are 404 and never listed; operations
replay from the admin's read-only delivery log."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client

from tests.staff import staff_client, staff_user
from tests.webhook_support import Receiver
from webhooks.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def login(username: str) -> Client:
    client = Client()
    assert client.login(username=username, password="pass-1234")
    return client


@pytest.fixture
def alice(merchant_alice) -> Client:
    return login("alice")


@pytest.fixture
def mallory(merchant_mallory) -> Client:
    return login("mallory")


def register_on_the_page(client: Client, receiver: Receiver, **fields) -> str:
    """Register through the form; returns the secret the page showed."""
    r = client.post("/webhooks/", {"url": receiver.url, "description": "订单系统", **fields})
    assert r.status_code == 200
    html = r.content.decode()
    (secret,) = re.findall(r"<code class=\"secret\" data-secret>(whsec_[A-Za-z0-9_-]+)</code>", html)
    receiver.secret = secret
    return secret


def test_the_secret_is_shown_once_and_kept_encrypted(alice, merchant_alice, receiver):
    secret = register_on_the_page(alice, receiver)
    endpoint = WebhookEndpoint.objects.get(merchant=merchant_alice)
    assert (endpoint.url, endpoint.secret, endpoint.description) == (receiver.url, secret, "订单系统")
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM webhooks_webhookendpoint WHERE id = %s", [endpoint.pk])
        (stored,) = cursor.fetchone()
    assert secret not in stored  # ciphertext at rest
    page = alice.get("/webhooks/").content.decode()
    assert receiver.url in page and secret not in page  # never shown again


def test_a_bad_url_is_refused_on_the_form_with_the_catalogue_words(alice, merchant_alice):
    r = alice.post("/webhooks/", {"url": "ftp://example.com/x"})
    assert r.status_code == 400
    assert "接收地址无效" in r.content.decode()
    assert not WebhookEndpoint.objects.filter(merchant=merchant_alice).exists()


def test_test_event_from_the_page_arrives_signed_and_is_in_the_delivery_log(alice, merchant_alice, receiver):
    register_on_the_page(alice, receiver)
    endpoint = WebhookEndpoint.objects.get(merchant=merchant_alice)
    r = alice.post(f"/webhooks/endpoints/{endpoint.pk}/test/")
    assert r.status_code == 302
    (got,) = receiver.received
    assert got.verified and got.status == 200
    event = receiver.events[got.event_id]
    assert (event["type"], event["data"]["object"]) == ("webhook.test", "test")
    page = alice.get("/webhooks/").content.decode()
    assert got.event_id in page and "已送达" in page
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    detail = alice.get(f"/webhooks/deliveries/{delivery.pk}/").content.decode()
    assert 'data-status="succeeded"' in detail and 'data-attempt="1"' in detail


def test_a_failed_delivery_shows_why_and_replay_delivers_it(alice, merchant_alice, receiver):
    receiver.behaviour = lambda n, event: (500, {}) if n == 1 else (200, {})
    register_on_the_page(alice, receiver)
    endpoint = WebhookEndpoint.objects.get(merchant=merchant_alice)
    alice.post(f"/webhooks/endpoints/{endpoint.pk}/test/")
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    page = alice.get("/webhooks/?status=pending").content.decode()
    assert "接收地址返回了非 2xx 状态码" in page and "HTTP 500" in page
    r = alice.post(f"/webhooks/deliveries/{delivery.pk}/replay/")
    assert r.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert len(receiver.events) == 1 and [x.status for x in receiver.received] == [500, 200]


def test_disable_and_enable_from_the_page(alice, merchant_alice, receiver):
    register_on_the_page(alice, receiver)
    endpoint = WebhookEndpoint.objects.get(merchant=merchant_alice)
    alice.post(f"/webhooks/endpoints/{endpoint.pk}/toggle/", {"action": "disable"})
    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    r = alice.post(f"/webhooks/endpoints/{endpoint.pk}/test/", follow=True)
    assert "该接收地址已停用" in r.content.decode() and receiver.received == []
    alice.post(f"/webhooks/endpoints/{endpoint.pk}/toggle/", {"action": "enable"})
    endpoint.refresh_from_db()
    assert endpoint.enabled is True


def test_another_merchant_cannot_see_or_replay_your_deliveries(alice, mallory, merchant_alice, receiver):
    register_on_the_page(alice, receiver)
    endpoint = WebhookEndpoint.objects.get(merchant=merchant_alice)
    alice.post(f"/webhooks/endpoints/{endpoint.pk}/test/")
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    event_id = str(delivery.event.event_id)
    answers = {
        "detail": mallory.get(f"/webhooks/deliveries/{delivery.pk}/").status_code,
        "replay": mallory.post(f"/webhooks/deliveries/{delivery.pk}/replay/").status_code,
        "test": mallory.post(f"/webhooks/endpoints/{endpoint.pk}/test/").status_code,
        "disable": mallory.post(f"/webhooks/endpoints/{endpoint.pk}/toggle/", {"action": "disable"}).status_code,
    }
    assert answers == {"detail": 404, "replay": 404, "test": 404, "disable": 404}
    page = mallory.get("/webhooks/").content.decode()
    assert receiver.url not in page and event_id not in page
    delivery.refresh_from_db()
    endpoint.refresh_from_db()
    assert (delivery.attempts, endpoint.enabled, len(receiver.received)) == (1, True, 1)
    assert alice.get(f"/webhooks/deliveries/{delivery.pk}/").status_code == 200


def test_operations_replay_from_the_admin_delivery_log_and_support_cannot_see_it(alice, merchant_alice, receiver):
    register_on_the_page(alice, receiver)
    endpoint = WebhookEndpoint.objects.get(merchant=merchant_alice)
    alice.post(f"/webhooks/endpoints/{endpoint.pk}/test/")
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    ops = staff_client(staff_user("ops_webhooks", "operations"))
    listing = ops.get("/admin/webhooks/webhookdelivery/")
    assert listing.status_code == 200 and str(delivery.event.event_id) in listing.content.decode()
    r = ops.post(
        "/admin/webhooks/webhookdelivery/",
        {"action": "replay", "_selected_action": [delivery.pk]},
    )
    assert r.status_code == 302
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert len(receiver.received) == 2 and len(receiver.events) == 1  # the same event id, de-duplicated
    support = staff_client(staff_user("support_webhooks", "support"))
    assert support.get("/admin/webhooks/webhookdelivery/").status_code == 403
