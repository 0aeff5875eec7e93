"""Webhooks: a merchant's endpoints, the outbox of events and one delivery per event × endpoint.

``WebhookEvent`` is the outbox: written in the same transaction as the state change it reports, append-only at
the database level (config.dbtriggers), and the ``event_id`` is what receivers de-duplicate by. A
``WebhookDelivery`` is the state of getting one event to one endpoint (attempts, the next one, the claim of the
worker that is sending it); every attempt is an append-only ``WebhookAttempt`` row.
"""

from __future__ import annotations

import uuid

from django.db import models

from accounts.models import Merchant
from config.catalogue import code_message
from config.crypto import EncryptedTextField


class WebhookEndpoint(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=100, blank=True, default="")
    # The signing secret: shown to the merchant once, kept encrypted at rest (AES-GCM, config.crypto), because
    # signing needs the secret itself (a hash would not do).
    secret = EncryptedTextField()
    # Space-separated event types this endpoint receives; empty: every type.
    event_types = models.CharField(max_length=500, blank=True, default="")
    enabled = models.BooleanField(default=True)
    # Failed attempts in a row (any delivery) and when the run of failures began; a success resets both.
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.url

    @property
    def event_type_list(self) -> list[str]:
        return self.event_types.split()

    def receives(self, event_type: str) -> bool:
        types = self.event_type_list
        return not types or event_type in types


class WebhookEvent(models.Model):
    """One thing that happened, as the receivers get it. Never updated or deleted (database triggers)."""

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=60, db_index=True)
    payload = models.JSONField(help_text="the event's data object, as sent")
    # What the event reports (e.g. "withdrawal_event:42"): the same fact is never emitted twice.
    source_key = models.CharField(max_length=100, unique=True, null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "待投递"
        SUCCEEDED = "succeeded", "已送达"
        FAILED = "failed", "已放弃"

    event = models.ForeignKey(WebhookEvent, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When a worker may (next) try: the backoff's next time, or the expiry of a worker's claim.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Retries stop at this time (24 h after the event, or after a replay).
    give_up_at = models.DateTimeField()
    # The claim of the worker sending it now: it expires (next_attempt_at) and another worker takes over.
    lease_token = models.CharField(max_length=32, blank=True, default="")
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    # The last failed attempt's error code (config.catalogue.CODES, ``webhook_*``) and its technical detail.
    last_error_code = models.CharField(max_length=40, blank=True, default="")
    last_error_detail = models.CharField(max_length=255, blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(status="pending"),
            )
        ]
        permissions = [("replay_webhookdelivery", "Can replay a webhook delivery")]

    def __str__(self) -> str:
        return f"delivery {self.pk} of {self.event_id} to endpoint {self.endpoint_id}"

    @property
    def last_error_words(self) -> str:
        """Why the last attempt failed, in the catalogue's words (pages, zh-Hans)."""
        return code_message(self.last_error_code) if self.last_error_code else ""


class WebhookAttempt(models.Model):
    """One POST to an endpoint and what came back. Never updated or deleted (database triggers)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.PROTECT, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    error_code = models.CharField(max_length=40, blank=True, default="")
    error_detail = models.CharField(max_length=255, blank=True, default="")
    response_excerpt = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"

    @property
    def error_words(self) -> str:
        return code_message(self.error_code) if self.error_code else ""
