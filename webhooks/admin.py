"""Operations' delivery log: every delivery of every merchant's webhooks, read-only, with its attempts, and a
replay action (``webhooks.replay_webhookdelivery``); and the merchants' endpoints, read-only (which are failing,
which were disabled and why). Registering, enabling and the secrets are the merchants' own pages' (a secret is
never shown here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from config.errors import DomainError

from .models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from .services import delivery_replay

REPLAY_PERMISSION = "webhooks.replay_webhookdelivery"


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ("number", "started_at", "duration_ms", "status_code", "succeeded", "error_code", "error_detail")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "created_at",
        "merchant",
        "event_type",
        "event_id",
        "endpoint_url",
        "status",
        "attempts",
        "last_status_code",
        "last_error_code",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("status", "event__type", "last_error_code")
    search_fields = ("=event__event_id", "endpoint__url", "=endpoint__merchant__id")
    list_select_related = ("event", "endpoint", "endpoint__merchant")
    readonly_fields = (
        "event",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "give_up_at",
        "last_status_code",
        "last_error_code",
        "last_error_detail",
        "delivered_at",
        "created_at",
        "updated_at",
    )
    exclude = ("lease_token",)
    inlines = [WebhookAttemptInline]
    actions = ["replay"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, tuple[Callable[..., str], str, str] | None]:
        actions = super().get_actions(request)
        if not request.user.has_perm(REPLAY_PERMISSION):
            actions.pop("replay", None)
        return actions

    @admin.display(description="商户")
    def merchant(self, obj: WebhookDelivery) -> Any:
        return obj.endpoint.merchant

    @admin.display(description="事件类型")
    def event_type(self, obj: WebhookDelivery) -> str:
        return obj.event.type

    @admin.display(description="事件 ID")
    def event_id(self, obj: WebhookDelivery) -> str:
        return str(obj.event.event_id)

    @admin.display(description="接收地址")
    def endpoint_url(self, obj: WebhookDelivery) -> str:
        return obj.endpoint.url

    @admin.action(description="重新发送所选投递 (replay)")
    def replay(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        if not request.user.has_perm(REPLAY_PERMISSION):
            return
        replayed, refused = 0, []
        for delivery in queryset:
            try:
                delivery_replay(delivery_id=delivery.pk)
            except DomainError as exc:
                refused.append(f"#{delivery.pk}: {exc.message}")
            else:
                replayed += 1
        messages.success(request, f"已重新发送 {replayed} 条投递")
        if refused:
            messages.warning(request, "；".join(refused))


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "merchant",
        "url",
        "event_types",
        "enabled",
        "consecutive_failures",
        "failing_since",
        "disabled_at",
        "created_at",
    )
    list_filter = ("enabled",)
    search_fields = ("url", "=merchant__id", "merchant__name")
    list_select_related = ("merchant",)
    fields = (
        "merchant",
        "url",
        "description",
        "event_types",
        "enabled",
        "consecutive_failures",
        "failing_since",
        "disabled_at",
        "disabled_reason",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
