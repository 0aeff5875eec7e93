"""Review console: a risk-ordered queue, approve / reject buttons that call the services, read-only money."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from config.errors import DomainError, error_message

from .models import Status, Withdrawal, WithdrawalApproval, WithdrawalEvent, WithdrawalPolicy
from .services import withdrawal_approve, withdrawal_reject


def yuan(fen: int | None) -> str:
    return "—" if fen is None else f"¥{fen / 100:,.2f}"


class ReviewQueue(Withdrawal):
    class Meta:
        proxy = True
        verbose_name = "待审核提现"
        verbose_name_plural = "审核队列 (review queue)"


class EventInline(admin.TabularInline):
    model = WithdrawalEvent
    extra = 0
    can_delete = False
    fields = ("created_at", "from_status", "to_status", "actor_label", "actor", "reason")
    readonly_fields = fields
    ordering = ("created_at", "id")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


class ApprovalInline(admin.TabularInline):
    model = WithdrawalApproval
    extra = 0
    can_delete = False
    fields = ("reviewer", "note", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


class StuckFilter(admin.SimpleListFilter):
    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):  # type: ignore[no-untyped-def]
        return [("yes", "flagged as stuck")]

    def queryset(self, request, queryset):  # type: ignore[no-untyped-def]
        return queryset.filter(stuck_flagged_at__isnull=False) if self.value() == "yes" else queryset


@admin.register(Withdrawal)
class WithdrawalAdmin(admin.ModelAdmin):
    change_form_template = "admin/withdrawals/withdrawal/change_form.html"
    list_display = (
        "id", "order_no", "merchant", "amount_yuan", "fee_yuan", "status_badge", "risk_outcome", "risk_score",
        "reasons", "approvals_given", "channel_code", "created_at",
    )
    list_filter = ("status", "risk_outcome", "speed", "channel_code", StuckFilter)
    search_fields = ("order_no", "merchant__name", "payout_account__account_number", "=id")
    date_hierarchy = "created_at"
    inlines = [ApprovalInline, EventInline]
    list_select_related = ("merchant",)
    readonly_fields = (
        "order_no", "merchant", "payout_account", "amount_yuan", "fee_yuan", "net_yuan", "currency", "speed",
        "status", "source", "client_ip", "device_id", "risk_outcome", "risk_score", "reasons", "risk_explanation_pretty",
        "required_approvals", "channel_code", "channel_reference", "routing_pretty", "quote", "attempts",
        "failure_code", "failure_reason", "stuck_flagged_at", "created_at", "state_changed_at", "paid_at",
    )
    fieldsets = (
        ("提现", {"fields": ("order_no", "merchant", "payout_account", ("amount_yuan", "fee_yuan", "net_yuan"),
                             "speed", "status", "source", ("client_ip", "device_id"))}),
        ("风控", {"fields": ("risk_outcome", "risk_score", "reasons", "risk_explanation_pretty", "required_approvals")}),
        ("通道", {"fields": ("channel_code", "channel_reference", "routing_pretty", "quote", "attempts",
                             "failure_code", "failure_reason", "stuck_flagged_at")}),
        ("时间", {"fields": ("created_at", "state_changed_at", "paid_at")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False  # every change goes through the review buttons (services)

    @admin.display(description="金额", ordering="amount")
    def amount_yuan(self, obj: Withdrawal) -> str:
        return yuan(obj.amount)

    @admin.display(description="手续费")
    def fee_yuan(self, obj: Withdrawal) -> str:
        return yuan(obj.fee)

    @admin.display(description="到账金额")
    def net_yuan(self, obj: Withdrawal) -> str:
        return yuan(obj.net_amount)

    @admin.display(description="状态", ordering="status")
    def status_badge(self, obj: Withdrawal) -> str:
        colour = {"paid": "#16a34a", "failed": "#dc2626", "rejected": "#dc2626", "pending_review": "#d97706",
                  "outcome_unknown": "#7c3aed"}.get(obj.status, "#2563eb")
        flag = " ⚠" if obj.stuck_flagged_at else ""
        return format_html('<b style="color:{}">{}{}</b>', colour, obj.get_status_display(), flag)

    @admin.display(description="风控原因")
    def reasons(self, obj: Withdrawal) -> str:
        return ", ".join(obj.risk_reasons or []) or "—"

    @admin.display(description="审批")
    def approvals_given(self, obj: Withdrawal) -> str:
        return f"{obj.approvals.count()}/{obj.required_approvals}"

    @admin.display(description="失败原因")
    def failure_reason(self, obj: Withdrawal) -> str:
        return error_message(obj.failure_code) if obj.failure_code else "—"

    @admin.display(description="风控解释")
    def risk_explanation_pretty(self, obj: Withdrawal) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>",
                           json.dumps(obj.risk_explanation, ensure_ascii=False, indent=2))

    @admin.display(description="路由决策")
    def routing_pretty(self, obj: Withdrawal) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>",
                           json.dumps(obj.routing, ensure_ascii=False, indent=2))

    # --- review buttons ---------------------------------------------------------------------------------
    def get_urls(self):  # type: ignore[no-untyped-def]
        custom = [
            path("<int:pk>/approve/", self.admin_site.admin_view(self.approve_view), name="withdrawals_withdrawal_approve"),
            path("<int:pk>/reject/", self.admin_site.admin_view(self.reject_view), name="withdrawals_withdrawal_reject"),
        ]
        return custom + super().get_urls()

    def _back(self, request: HttpRequest, pk: int) -> HttpResponse:
        nxt = request.POST.get("next") or reverse("admin:withdrawals_withdrawal_change", args=[pk])
        return HttpResponseRedirect(nxt)

    def approve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        get_object_or_404(Withdrawal, pk=pk)
        if request.method != "POST":
            return self._back(request, pk)
        try:
            w = withdrawal_approve(withdrawal_id=pk, reviewer=request.user, note=request.POST.get("note", ""))  # type: ignore[arg-type]
        except DomainError as exc:
            self.message_user(request, f"未能通过：{exc.message}", messages.ERROR)
        else:
            done = "已通过，进入出款" if w.status == Status.APPROVED else f"已记录审批 {w.approvals.count()}/{w.required_approvals}"
            self.message_user(request, f"提现 {w.order_no}：{done}", messages.SUCCESS)
        return self._back(request, pk)

    def reject_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        get_object_or_404(Withdrawal, pk=pk)
        if request.method != "POST":
            return self._back(request, pk)
        try:
            w = withdrawal_reject(withdrawal_id=pk, reviewer=request.user, reason=request.POST.get("reason", ""))  # type: ignore[arg-type]
        except DomainError as exc:
            self.message_user(request, f"未能驳回：{exc.message} {exc.details or ''}", messages.ERROR)
        else:
            self.message_user(request, f"提现 {w.order_no} 已驳回，资金已退回商户可提现余额", messages.SUCCESS)
        return self._back(request, pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        obj = self.get_object(request, object_id)
        extra = extra_context or {}
        if obj is not None:
            user = request.user
            extra.update(
                can_review=obj.status == Status.PENDING_REVIEW and user.has_perm("withdrawals.review_withdrawal"),
                can_reject=obj.status in (Status.PENDING_REVIEW, Status.AWAITING_VERIFICATION)
                and user.has_perm("withdrawals.review_withdrawal"),
                already_approved=obj.approvals.filter(reviewer=user).exists(),
                approvals_given=obj.approvals.count(),
                waiting=str(timezone.now() - obj.created_at).split(".")[0],
                amount_yuan=yuan(obj.amount),
                net_yuan=yuan(obj.net_amount),
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)


@admin.register(ReviewQueue)
class ReviewQueueAdmin(WithdrawalAdmin):
    """Only what waits for a reviewer, riskiest and longest-waiting first."""

    list_filter = ("risk_outcome", "speed")  # type: ignore[assignment]
    date_hierarchy = None  # type: ignore[assignment]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super().get_queryset(request)
            .filter(status=Status.PENDING_REVIEW)
            .order_by(F("risk_score").desc(nulls_last=True), "created_at")
        )

    def get_urls(self):  # type: ignore[no-untyped-def]
        return admin.ModelAdmin.get_urls(self)

    def change_view(self, request, object_id, form_url="", extra_context=None):  # type: ignore[no-untyped-def]
        return HttpResponseRedirect(reverse("admin:withdrawals_withdrawal_change", args=[object_id]))

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return request.user.has_perm("withdrawals.view_withdrawal")


@admin.register(WithdrawalPolicy)
class WithdrawalPolicyAdmin(SimpleHistoryAdmin):
    list_display = ("name", "active", "min_amount", "max_per_withdrawal", "daily_amount_limit", "daily_count_limit",
                    "dual_approval_threshold", "updated_at")
