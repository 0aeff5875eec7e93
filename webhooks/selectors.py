"""Reads of webhooks' rows for the merchant pages and the partner API: always scoped to one merchant, so
another merchant's id is simply not found."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def endpoints_of(*, merchant_id: int) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(merchant_id=merchant_id).order_by("-created_at")


def endpoint_of_merchant(*, merchant_id: int, endpoint_id: int) -> WebhookEndpoint | None:
    return WebhookEndpoint.objects.filter(merchant_id=merchant_id, pk=endpoint_id).first()


def deliveries_of(*, merchant_id: int, status: str = "") -> QuerySet[WebhookDelivery]:
    """Newest first, with the event and the endpoint (for a paginator)."""
    rows = WebhookDelivery.objects.filter(endpoint__merchant_id=merchant_id).select_related("event", "endpoint")
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-created_at", "-pk")


def delivery_of_merchant(*, merchant_id: int, delivery_id: int) -> WebhookDelivery | None:
    return (
        WebhookDelivery.objects.filter(endpoint__merchant_id=merchant_id, pk=delivery_id)
        .select_related("event", "endpoint")
        .first()
    )


def delivery_attempts(*, delivery_id: int) -> list[WebhookAttempt]:
    return list(WebhookAttempt.objects.filter(delivery_id=delivery_id).order_by("-started_at", "-pk"))
