"""Channel configuration (history kept; protocol config by two-person change), breakers, alerts, callback
receipts, statements.

Operations' role has ``view_channel`` / ``change_channel``; the read-mostly models here follow those two
permissions so the operations group sees them without a permission per model. Resolving statement differences
calls withdrawal services and lives in withdrawals/admin.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from config.errors import DomainError
from config.history_admin import SafeHistoryAdmin
from config.pii import mask_account

from .config_changes import (
    channel_config_change_approve,
    channel_config_change_propose,
    channel_config_change_reject,
    channel_config_redacted,
)
from .health import channel_alert_acknowledge
from .models import (
    CallbackReceipt,
    Channel,
    ChannelAlert,
    ChannelBreaker,
    ChannelConfigChange,
    OpsDashboard,
    SandboxPayout,
    StatementImport,
)


@admin.register(Channel)
class ChannelAdmin(SafeHistoryAdmin):
    """Operations edit the operational fields (pause / resume, quotas, maintenance windows, priority). The
    protocol config — endpoint, ids, key references — is read-only here for everyone: it changes through a
    ChannelConfigChange that one user proposes and another approves. Fees and capabilities are the
    superuser's."""

    OPERATIONAL_FIELDS = (
        "enabled",
        "paused",
        "paused_reason",
        "priority",
        "min_amount",
        "max_amount",
        "daily_amount_limit",
        "daily_count_limit",
        "maintenance_windows",
        "error_budget_bp",
    )
    ALWAYS_READ_ONLY = ("code", "adapter", "config_redacted", "pending_change")

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
        ("协议配置（双人复核变更）", {"fields": ("config_redacted", "pending_change")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str] | tuple[str, ...]:
        if obj is None and request.user.is_superuser:
            return ("config_redacted", "pending_change")  # a new channel starts without config; propose one
        if request.user.is_superuser:
            return self.ALWAYS_READ_ONLY
        others = [
            f.name
            for f in Channel._meta.fields
            if f.editable and f.name not in self.OPERATIONAL_FIELDS and f.name not in ("id", "config")
        ]
        return (*self.ALWAYS_READ_ONLY, *others)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # routing history, quotas and withdrawals refer to channels: disable one instead

    @admin.display(description="熔断")
    def breaker_state(self, obj: Channel) -> str:
        b = ChannelBreaker.objects.filter(channel=obj).first()
        return b.state if b else "closed"

    @admin.display(description="协议配置（密钥只以文件或环境变量引用）")
    def config_redacted(self, obj: Channel) -> str:
        return format_html(
            "<pre style='white-space:pre-wrap'>{}</pre>",
            json.dumps(channel_config_redacted(obj.config), ensure_ascii=False, indent=2),
        )

    @admin.display(description="待复核的配置变更")
    def pending_change(self, obj: Channel) -> str:
        change = obj.config_changes.filter(status=ChannelConfigChange.Status.PENDING).first() if obj.pk else None
        if change is None:
            return format_html(
                '<a href="{}">提出配置变更</a>', reverse("admin:payment_channels_channelconfigchange_add")
            )
        url = reverse("admin:payment_channels_channelconfigchange_change", args=[change.pk])
        return format_html('<a href="{}">#{}（{} 提出）</a>', url, change.pk, change.proposed_by)


class ChannelConfigProposalForm(forms.ModelForm):
    proposed_config = forms.JSONField(
        label="新的协议配置（JSON；密钥写成 <name>_file 或 <name>_env）", widget=forms.Textarea(attrs={"rows": 14})
    )

    class Meta:
        model = ChannelConfigChange
        fields = ("channel", "proposed_config", "reason")


@admin.register(ChannelConfigChange)
class ChannelConfigChangeAdmin(admin.ModelAdmin):
    """Proposals to change a channel's endpoint or keys: one user proposes (add), a different one approves or
    rejects on the proposal's page. Applied only by channels.config_changes; the rows are the audit trail."""

    change_form_template = "admin/channels/channelconfigchange_change_form.html"
    form = ChannelConfigProposalForm
    list_display = ("id", "channel", "status", "reason", "proposed_by", "proposed_at", "decided_by", "decided_at")
    list_filter = ("status", "channel")
    readonly_fields = (
        "channel",
        "status",
        "reason",
        "diff",
        "proposed_by",
        "proposed_at",
        "decided_by",
        "decided_at",
        "decision_note",
    )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        u = request.user
        return u.has_perm("payment_channels.propose_channel_config") or u.has_perm(
            "payment_channels.approve_channel_config"
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payment_channels.propose_channel_config")

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # decided by the approve / reject buttons, never edited

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str] | tuple[str, ...]:
        return () if obj is None else self.readonly_fields

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        return ("channel", "proposed_config", "reason") if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ChannelConfigChange, form: ModelForm, change: bool) -> None:
        # The service creates the row (permission, validation, one pending change per channel).
        obj.pk = channel_config_change_propose(
            channel_id=form.cleaned_data["channel"].pk,
            config=form.cleaned_data["proposed_config"],
            reason=form.cleaned_data["reason"],
            by=request.user,
        ).pk

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().add_view(request, form_url, extra_context)
        except DomainError as exc:
            self.message_user(request, f"未能提交：{exc.message} {exc.details or ''}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    @admin.display(description="变更内容（旧 → 新）")
    def diff(self, obj: ChannelConfigChange) -> str:
        old, new = channel_config_redacted(obj.base_config), channel_config_redacted(obj.proposed_config)
        rows = [(k, old.get(k, "—"), new.get(k, "—")) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        return format_html(
            "<table><thead><tr><th>键</th><th>现在</th><th>提议</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>", rows),
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="payment_channels_channelconfigchange_approve",
            ),
            path(
                "<int:pk>/reject/",
                self.admin_site.admin_view(self.reject_view),
                name="payment_channels_channelconfigchange_reject",
            ),
            *super().get_urls(),
        ]

    def _decide(self, request: HttpRequest, pk: int, approve: bool) -> HttpResponse:
        get_object_or_404(ChannelConfigChange, pk=pk)
        back = HttpResponseRedirect(reverse("admin:payment_channels_channelconfigchange_change", args=[pk]))
        if request.method != "POST":
            return back
        note = request.POST.get("note", "")
        try:
            if approve:
                channel_config_change_approve(change_id=pk, by=request.user, note=note)
                self.message_user(request, "配置变更已复核通过并生效", messages.SUCCESS)
            else:
                channel_config_change_reject(change_id=pk, by=request.user, note=note)
                self.message_user(request, "配置变更已驳回", messages.SUCCESS)
        except DomainError as exc:
            if exc.code == "permission_denied":
                raise PermissionDenied from None
            self.message_user(request, f"{exc.message} {exc.details or ''}", messages.ERROR)
        return back

    def approve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._decide(request, pk, approve=True)

    def reject_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._decide(request, pk, approve=False)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        change = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if change is not None:
            pending = change.status == ChannelConfigChange.Status.PENDING
            extra.update(
                can_approve=pending
                and request.user.has_perm("payment_channels.approve_channel_config")
                and change.proposed_by_id != request.user.pk,
                can_reject=pending
                and (
                    request.user.has_perm("payment_channels.approve_channel_config")
                    or change.proposed_by_id == request.user.pk
                ),
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)


class _ChannelOpsPermissions:
    """View with ``view_channel``; change (acknowledge) with ``change_channel``; nobody adds or deletes."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payment_channels.view_channel")

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.has_perm("payment_channels.view_channel")

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
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

    def get_actions(self, request: HttpRequest) -> dict[str, tuple[Callable[..., str], str, str] | None]:
        actions = super().get_actions(request)
        if not request.user.has_perm("payment_channels.change_channel"):
            actions.pop("acknowledge", None)
        return actions

    @admin.action(description="确认所选告警 (acknowledge)")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[ChannelAlert]) -> None:
        for alert in queryset:
            channel_alert_acknowledge(alert_id=alert.pk, by=request.user.get_username())
        messages.success(request, f"已确认 {queryset.count()} 条告警")


@admin.register(OpsDashboard)
class OpsDashboardAdmin(_ChannelOpsPermissions, admin.ModelAdmin):
    """Only a link on the admin index: the page itself is /admin/ops/."""

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
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
    """The in-process sandbox's own book (what a provider holds): read-only, account numbers masked."""

    list_display = ("order_no", "channel_code", "amount", "status", "reason_code", "submissions", "created_at")
    search_fields = ("order_no",)
    list_filter = ("status",)
    fields = ("order_no", "channel_code", "amount", "currency", "account_masked", "holder_name", "status")
    readonly_fields = fields

    @admin.display(description="账号")
    def account_masked(self, obj: SandboxPayout) -> str:
        return mask_account(obj.account_number)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
