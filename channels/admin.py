"""Channel configuration (history kept), breakers, alerts, callback receipts, statements.

Operations' role has ``view_channel`` / ``change_channel``; the read-mostly models here follow those two
permissions so the operations group sees them without a permission per model. Resolving statement differences
calls withdrawal services and lives in withdrawals/admin.py.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from .health import channel_alert_acknowledge
from .models import (
    CallbackReceipt,
    Channel,
    ChannelAlert,
    ChannelBreaker,
    OpsDashboard,
    SandboxPayout,
    StatementImport,
)


@admin.register(Channel)
class ChannelAdmin(SimpleHistoryAdmin):
    list_display = (
        "code",
        "name",
        "adapter",
        "enabled",
        "paused",
        "priority",
        "fee_fixed",
        "fee_rate_bp",
        "expected_arrival_seconds",
        "max_amount",
        "daily_amount_limit",
        "speed_tiers",
        "breaker_state",
    )
    list_filter = ("adapter", "enabled", "paused")
    fieldsets = (
        (None, {"fields": ("code", "name", "adapter", "enabled", ("paused", "paused_reason"), "priority")}),
        ("费用（通道向我们收取）", {"fields": (("fee_fixed", "fee_rate_bp"), ("fee_min", "fee_max"))}),
        (
            "能力与限额",
            {
                "fields": (
                    "supported_account_kinds",
                    "speed_tiers",
                    "expected_arrival_seconds",
                    ("min_amount", "max_amount"),
                    ("daily_amount_limit", "daily_count_limit"),
                    "maintenance_windows",
                    "error_budget_bp",
                )
            },
        ),
        ("协议配置", {"fields": ("config",), "classes": ("collapse",)}),
    )

    @admin.display(description="熔断")
    def breaker_state(self, obj: Channel) -> str:
        b = ChannelBreaker.objects.filter(channel=obj).first()
        return b.state if b else "closed"


class _ChannelOpsPermissions:
    """View with ``view_channel``; change (acknowledge) with ``change_channel``; nobody adds or deletes."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payment_channels.view_channel")

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return request.user.has_perm("payment_channels.view_channel")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(ChannelAlert)
class ChannelAlertAdmin(_ChannelOpsPermissions, admin.ModelAdmin):
    list_display = (
        "created_at",
        "kind",
        "severity",
        "channel_code",
        "subject",
        "title",
        "acknowledged_at",
        "acknowledged_by",
    )
    list_filter = ("kind", "severity", "channel_code", ("acknowledged_at", admin.EmptyFieldListFilter))
    search_fields = ("title", "subject", "channel_code")
    readonly_fields = (
        "kind",
        "severity",
        "channel_code",
        "subject",
        "title",
        "detail",
        "dedupe_key",
        "created_at",
        "acknowledged_at",
        "acknowledged_by",
    )
    actions = ["acknowledge"]

    def get_actions(self, request: HttpRequest):  # type: ignore[no-untyped-def]
        actions = super().get_actions(request)
        if not request.user.has_perm("payment_channels.change_channel"):
            actions.pop("acknowledge", None)
        return actions

    @admin.action(description="确认所选告警 (acknowledge)")
    def acknowledge(self, request: HttpRequest, queryset) -> None:  # type: ignore[no-untyped-def]
        for alert in queryset:
            channel_alert_acknowledge(alert_id=alert.pk, by=request.user.get_username())
        messages.success(request, f"已确认 {queryset.count()} 条告警")


@admin.register(OpsDashboard)
class OpsDashboardAdmin(_ChannelOpsPermissions, admin.ModelAdmin):
    """Only a link on the admin index: the page itself is /admin/ops/."""

    def changelist_view(self, request: HttpRequest, extra_context=None):  # type: ignore[no-untyped-def]
        return HttpResponseRedirect(reverse("admin_ops"))


@admin.register(ChannelBreaker)
class ChannelBreakerAdmin(_ChannelOpsPermissions, admin.ModelAdmin):
    list_display = ("channel", "state", "changed_at", "probes_admitted", "probes_succeeded", "opened_count", "reason")


@admin.register(CallbackReceipt)
class CallbackReceiptAdmin(_ChannelOpsPermissions, admin.ModelAdmin):
    list_display = ("received_at", "channel_code", "notify_id", "order_no", "status", "outcome")
    list_filter = ("channel_code", "outcome")
    search_fields = ("order_no", "notify_id")


@admin.register(StatementImport)
class StatementImportAdmin(_ChannelOpsPermissions, admin.ModelAdmin):
    list_display = (
        "date",
        "channel_code",
        "imported_at",
        "line_count",
        "matched_count",
        "difference_count",
        "total_amount",
    )
    list_filter = ("channel_code",)
    date_hierarchy = "date"


@admin.register(SandboxPayout)
class SandboxPayoutAdmin(admin.ModelAdmin):
    list_display = ("order_no", "channel_code", "amount", "status", "reason_code", "submissions", "created_at")
    search_fields = ("order_no",)
    list_filter = ("status",)
