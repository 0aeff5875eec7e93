"""Webhooks: register endpoints, write events to the outbox, deliver them at least once, signed.

- ``event_emit`` is called inside the transaction that changes state (withdrawals.lifecycle, wallets): the event
  row and one delivery per subscribed endpoint commit or roll back with it. After commit a task is enqueued per
  delivery, and one per retry due within five minutes (with its countdown); a lost message (or a broker that is
  down) loses nothing, because the beat job ``webhooks.deliver_due`` finds every pending delivery that is due.
- A worker first **claims** a delivery (``select_for_update(skip_locked)``, a lease token, and the next attempt
  pushed to the lease's expiry), then POSTs with no lock held, then records the answer only if it still holds the
  claim. A worker killed in between leaves a claim that expires: the delivery is due again and another worker
  sends it (at least once; receivers de-duplicate by the event id).
- Failures back off exponentially (``WEBHOOK_RETRY_FIRST_SECONDS`` doubling, capped at
  ``WEBHOOK_RETRY_MAX_INTERVAL_SECONDS``) until ``WEBHOOK_RETRY_WINDOW_SECONDS`` (24 h) after the event. An
  endpoint that has failed ``WEBHOOK_DISABLE_AFTER_FAILURES`` times in a row over at least
  ``WEBHOOK_DISABLE_AFTER_SECONDS`` is disabled and its merchant notified (once).

The wire format (body, headers, signature) is documented in docs/webhooks.md; docs/example_client.py verifies it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Notification
from config.catalogue import PAGE_LANGUAGE, notification_render
from config.celery import app
from config.errors import DomainError

from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent

DELIVER_TASK = "webhooks.deliver"
SECRET_PREFIX = "whsec_"
USER_AGENT = "kamen-webhooks/1"
TEST_EVENT_TYPE = "webhook.test"
# The event types an endpoint may subscribe to (docs/webhooks.md describes each). Withdrawal events are
# "withdrawal." + the status it moved to.
WITHDRAWAL_STATUSES = (
    "submitted",
    "pending_review",
    "awaiting_verification",
    "approved",
    "processing",
    "outcome_unknown",
    "paid",
    "failed",
    "rejected",
    "cancelled",
    "reversed",
)
EVENT_TYPES = (
    *(f"withdrawal.{s}" for s in WITHDRAWAL_STATUSES),
    "credit.created",
    "credit.available",
    TEST_EVENT_TYPE,
)
# Why an attempt failed: codes of config.catalogue.CODES, shown to the merchant in its words.
ERROR_TIMEOUT = "webhook_timeout"
ERROR_CONNECTION = "webhook_connection_failed"
ERROR_HTTP_STATUS = "webhook_http_error"
ERROR_REDIRECT = "webhook_redirect_refused"
ERROR_ADDRESS = "webhook_address_not_allowed"
ATTEMPT_ERROR_CODES = (ERROR_TIMEOUT, ERROR_CONNECTION, ERROR_HTTP_STATUS, ERROR_REDIRECT, ERROR_ADDRESS)
# Retries sooner than this are messages with a countdown; later ones are left to the beat job (every minute), so
# workers never hold hour-long ETA messages (past the broker's visibility timeout they would be sent again).
RETRY_MESSAGE_MAX_WAIT = timedelta(minutes=5)


# --- the wire format ----------------------------------------------------------------------------------------
def utc_iso(moment: datetime) -> str:
    """``2026-11-29T08:30:00Z``: UTC, seconds, as every time in a webhook is written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(event: WebhookEvent) -> bytes:
    """The exact bytes POSTed (the same on every attempt; only the signature's timestamp changes)."""
    envelope = {
        "id": str(event.event_id),
        "type": event.type,
        "created_at": utc_iso(event.created_at),
        "merchant_id": event.merchant_id,
        "data": event.payload,
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def signature_header(*, secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the endpoint's secret>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 10 s, 20 s, 40 s … capped at one hour."""
    first = settings.WEBHOOK_RETRY_FIRST_SECONDS
    cap = settings.WEBHOOK_RETRY_MAX_INTERVAL_SECONDS
    exponent = min(max(attempts - 1, 0), 30)
    return timedelta(seconds=min(first * 2**exponent, cap))


# --- where we may send (SSRF) -------------------------------------------------------------------------------
def _private_allowed() -> bool:
    """Loopback and private addresses only outside production (DJANGO_DEBUG=1 or the test suite)."""
    return bool(settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES)


def _address_forbidden(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def endpoint_url_check(url: str) -> str:
    """The URL as it will be stored, or DomainError: http(s) only (https only in production), a host, no
    credentials in it, and in production no loopback / private / link-local address or name."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise DomainError("webhook_url_invalid", details={"url": url[:200]})
    allowed_schemes = {"http", "https"} if _private_allowed() else {"https"}
    if parts.scheme not in allowed_schemes or not parts.hostname or len(url) > 500:
        raise DomainError("webhook_url_invalid", details={"url": url[:200]})
    if parts.username or parts.password or parts.fragment:
        raise DomainError("webhook_url_invalid", details={"url": url[:200]})
    del port
    if not _private_allowed():
        host = parts.hostname.rstrip(".").lower()
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise DomainError("webhook_url_not_allowed", details={"host": host})
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None and _address_forbidden(host):
            raise DomainError("webhook_url_not_allowed", details={"host": host})
    return url


def _destination_problem(url: str) -> str:
    """Checked again at every attempt (a name may resolve elsewhere since registration): the reason the URL
    may not be called now, '' when it may."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "not an http(s) URL"
    if _private_allowed():
        return ""
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except OSError as exc:
        return f"cannot resolve {parts.hostname}: {exc}"
    for info in infos:
        address = str(info[4][0])
        if _address_forbidden(address):
            return f"{parts.hostname} resolves to {address}, a non-public address"
    return ""


# --- endpoints ----------------------------------------------------------------------------------------------
def _event_types_clean(event_types: Iterable[str]) -> str:
    types = sorted({t.strip() for t in event_types if t.strip()})
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise DomainError("invalid_request", details={"event_types": unknown})
    return " ".join(types)


def endpoint_create(
    *, merchant_id: int, url: str, description: str = "", event_types: Iterable[str] = ()
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret. The secret is returned here once; pages show it once."""
    clean_url = endpoint_url_check(url)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    endpoint = WebhookEndpoint.objects.create(
        merchant_id=merchant_id,
        url=clean_url,
        description=description[:100],
        secret=secret,
        event_types=_event_types_clean(event_types),
    )
    return endpoint, secret


def endpoint_disable(*, endpoint_id: int, reason: str) -> WebhookEndpoint:
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        if endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_at = timezone.now()
            endpoint.disabled_reason = reason[:255]
            endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "updated_at"])
    return endpoint


def endpoint_enable(*, endpoint_id: int) -> WebhookEndpoint:
    """Back on, with a clean failure count; its pending deliveries are due again now."""
    now = timezone.now()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        if not endpoint.enabled:
            endpoint.enabled = True
            endpoint.disabled_at = None
            endpoint.disabled_reason = ""
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
            endpoint.save()
            pending = WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDelivery.Status.PENDING)
            pending.update(next_attempt_at=now, give_up_at=now + _window(), lease_token="")
            ids = list(pending.values_list("pk", flat=True))
            transaction.on_commit(lambda: deliveries_enqueue(ids), robust=True)
    return endpoint


# --- the outbox ---------------------------------------------------------------------------------------------
def _window() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW_SECONDS)


def deliveries_enqueue(delivery_ids: Iterable[int], *, countdown: int = 0) -> None:
    """One delivery task per id, now or after ``countdown`` seconds. Called after commit; a message lost here
    is found by the beat job."""
    task = app.tasks[DELIVER_TASK]
    for delivery_id in delivery_ids:
        task.apply_async(args=(delivery_id,), countdown=countdown)


def event_emit(
    *,
    merchant_id: int,
    type: str,
    data: dict[str, Any],
    occurred_at: datetime | None = None,
    source_key: str | None = None,
) -> WebhookEvent | None:
    """Record an event for the merchant's endpoints that receive ``type``, in the caller's transaction, and
    deliver it after commit. Nothing is written for a merchant with no such endpoint. ``source_key`` names the
    fact reported (one event per fact, whoever calls twice)."""
    subscribed = [
        pk
        for pk, types in WebhookEndpoint.objects.filter(merchant_id=merchant_id, enabled=True).values_list(
            "pk", "event_types"
        )
        if not types.split() or type in types.split()
    ]
    if not subscribed:
        return None
    if source_key is not None and WebhookEvent.objects.filter(source_key=source_key).exists():
        return None
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        event = WebhookEvent.objects.create(
            merchant_id=merchant_id, type=type, payload=data, source_key=source_key, created_at=occurred_at or now
        )
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(event=event, endpoint_id=pk, next_attempt_at=now, give_up_at=now + _window())
            for pk in subscribed
        )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: deliveries_enqueue(ids), robust=True)
    return event


def delivery_replay(*, delivery_id: int) -> WebhookDelivery:
    """Send the same event (same id) to the same endpoint again, now, with a fresh 24-hour retry window."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",)).select_related("endpoint").get(pk=delivery_id)
        )
        if not delivery.endpoint.enabled:
            raise DomainError("webhook_endpoint_disabled", details={"endpoint": delivery.endpoint_id})
        delivery.status = WebhookDelivery.Status.PENDING
        delivery.next_attempt_at = now
        delivery.give_up_at = now + _window()
        delivery.lease_token = ""
        delivery.delivered_at = None
        delivery.save()
        transaction.on_commit(lambda: deliveries_enqueue([delivery_id]), robust=True)
    return delivery


def endpoint_test_send(*, endpoint_id: int) -> WebhookDelivery:
    """A ``webhook.test`` event to this endpoint only (signed and retried like any other)."""
    now = timezone.now()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
        if not endpoint.enabled:
            raise DomainError("webhook_endpoint_disabled", details={"endpoint": endpoint_id})
        event = WebhookEvent.objects.create(
            merchant_id=endpoint.merchant_id,
            type=TEST_EVENT_TYPE,
            payload={"object": "test", "endpoint_id": endpoint.pk, "url": endpoint.url},
            created_at=now,
        )
        delivery = WebhookDelivery.objects.create(
            event=event, endpoint=endpoint, next_attempt_at=now, give_up_at=now + _window()
        )
        transaction.on_commit(lambda: deliveries_enqueue([delivery.pk]), robust=True)
    return delivery


# --- delivery -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryClaim:
    """What a worker needs to send one delivery, taken under a lease."""

    delivery_id: int
    token: str
    attempt: int
    url: str
    secret: str
    event_id: str
    event_type: str
    body: bytes


@dataclass(frozen=True)
class AttemptResult:
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error_code: str  # "" on success
    error_detail: str
    response_excerpt: str

    @property
    def succeeded(self) -> bool:
        return not self.error_code


def deliveries_due(*, limit: int = 200, now: datetime | None = None) -> list[int]:
    """Pending deliveries whose next attempt (a retry, or the expiry of a lost claim) has come, oldest first."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def delivery_claim(*, delivery_id: int, now: datetime | None = None) -> DeliveryClaim | None:
    """Take the delivery for one attempt if it is due and nobody holds it; None otherwise. The claim lasts
    ``WEBHOOK_LEASE_SECONDS``: the next attempt moves to its expiry, so a worker that dies mid-send leaves a
    delivery that becomes due again by itself."""
    now = now or timezone.now()
    token = uuid.uuid4().hex
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint", "event")
            .filter(
                pk=delivery_id,
                status=WebhookDelivery.Status.PENDING,
                next_attempt_at__lte=now,
                endpoint__enabled=True,
            )
            .first()
        )
        if delivery is None:
            return None
        delivery.attempts += 1
        delivery.lease_token = token
        delivery.next_attempt_at = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
        delivery.save(update_fields=["attempts", "lease_token", "next_attempt_at", "updated_at"])
    return DeliveryClaim(
        delivery_id=delivery.pk,
        token=token,
        attempt=delivery.attempts,
        url=delivery.endpoint.url,
        secret=delivery.endpoint.secret,
        event_id=str(delivery.event.event_id),
        event_type=delivery.event.type,
        body=event_body(delivery.event),
    )


def _excerpt(response: requests.Response) -> str:
    try:
        chunk = next(response.iter_content(500), b"")
    except requests.RequestException:
        return ""
    return chunk.decode("utf-8", "replace")[:500]


def delivery_post(claim: DeliveryClaim) -> AttemptResult:
    """One signed POST: a timeout always, no proxy from the environment, no redirect followed (a 3xx is a failed
    attempt), and the destination's addresses checked first outside development."""
    started_at = timezone.now()
    clock = time.perf_counter()

    def result(status: int | None, code: str, detail: str = "", excerpt: str = "") -> AttemptResult:
        elapsed = max(0, int((time.perf_counter() - clock) * 1000))
        return AttemptResult(started_at, elapsed, status, code, detail[:255], excerpt)

    problem = _destination_problem(claim.url)
    if problem:
        return result(None, ERROR_ADDRESS, problem)
    timestamp = int(started_at.timestamp())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Webhook-Id": claim.event_id,
        "Webhook-Event": claim.event_type,
        "Webhook-Attempt": str(claim.attempt),
        "Webhook-Signature": signature_header(secret=claim.secret, timestamp=timestamp, body=claim.body),
    }
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    with requests.Session() as session:
        session.trust_env = False  # no proxy or netrc from the environment
        try:
            response = session.post(
                claim.url,
                data=claim.body,
                headers=headers,
                timeout=(min(5, timeout), timeout),
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout as exc:
            return result(None, ERROR_TIMEOUT, str(exc))
        except requests.RequestException as exc:
            return result(None, ERROR_CONNECTION, str(exc))
        with response:
            excerpt = _excerpt(response)
            status = response.status_code
    if 200 <= status < 300:
        return result(status, "", "", excerpt)
    if 300 <= status < 400:
        return result(status, ERROR_REDIRECT, f"HTTP {status} to {response.headers.get('Location', '')}", excerpt)
    return result(status, ERROR_HTTP_STATUS, f"HTTP {status}", excerpt)


def delivery_attempt_record(*, claim: DeliveryClaim, result: AttemptResult, now: datetime | None = None) -> str:
    """Log the attempt and, if the claim still holds, settle the delivery: delivered, retried later, or given
    up after the window. Returns "succeeded", "retry", "failed" or "stale" (the claim was lost meanwhile)."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=claim.delivery_id)
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=claim.attempt,
            started_at=result.started_at,
            duration_ms=result.duration_ms,
            status_code=result.status_code,
            succeeded=result.succeeded,
            error_code=result.error_code,
            error_detail=result.error_detail,
            response_excerpt=result.response_excerpt,
        )
        if delivery.lease_token != claim.token or delivery.status != WebhookDelivery.Status.PENDING:
            return "stale"
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        delivery.lease_token = ""
        delivery.last_status_code = result.status_code
        delivery.last_error_code = result.error_code
        delivery.last_error_detail = result.error_detail
        if result.succeeded:
            delivery.status = WebhookDelivery.Status.SUCCEEDED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            outcome = "succeeded"
            endpoint.consecutive_failures = 0
            endpoint.failing_since = None
        else:
            if now >= delivery.give_up_at:
                delivery.status = WebhookDelivery.Status.FAILED
                delivery.next_attempt_at = None
                outcome = "failed"
            else:
                wait = retry_delay(delivery.attempts)
                delivery.next_attempt_at = now + wait
                outcome = "retry"
                if wait <= RETRY_MESSAGE_MAX_WAIT:
                    # A short wait is a message due then; the beat job is the net for a lost one.
                    transaction.on_commit(
                        lambda: deliveries_enqueue([delivery.pk], countdown=int(wait.total_seconds())), robust=True
                    )
            endpoint.consecutive_failures += 1
            endpoint.failing_since = endpoint.failing_since or result.started_at
        delivery.save()
        endpoint.save(update_fields=["consecutive_failures", "failing_since", "updated_at"])
        if not result.succeeded and _should_disable(endpoint, now):
            _endpoint_disable_for_failures(endpoint, now)
    return outcome


def _should_disable(endpoint: WebhookEndpoint, now: datetime) -> bool:
    return (
        endpoint.enabled
        and endpoint.failing_since is not None
        and endpoint.consecutive_failures >= settings.WEBHOOK_DISABLE_AFTER_FAILURES
        and now - endpoint.failing_since >= timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS)
    )


def _endpoint_disable_for_failures(endpoint: WebhookEndpoint, now: datetime) -> None:
    """Disable the (locked) endpoint and tell the merchant, in the same transaction: one notification."""
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = f"{endpoint.consecutive_failures} consecutive failed attempts since " + utc_iso(
        endpoint.failing_since or now
    )
    endpoint.save(update_fields=["enabled", "disabled_at", "disabled_reason", "updated_at"])
    message = notification_render(
        "webhook_endpoint_disabled",
        language=PAGE_LANGUAGE,
        url=endpoint.url,
        failures=endpoint.consecutive_failures,
    )
    Notification.objects.create(
        merchant_id=endpoint.merchant_id,
        kind=message.kind,
        title=message.title,
        body=message.body,
        link="/webhooks/",
    )


def delivery_attempt(*, delivery_id: int) -> str:
    """Claim, send, record: what the delivery task does. "skipped" when the delivery is not due or is held."""
    claim = delivery_claim(delivery_id=delivery_id)
    if claim is None:
        return "skipped"
    result = delivery_post(claim)
    return delivery_attempt_record(claim=claim, result=result)
