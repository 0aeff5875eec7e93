"""Review console: a risk-ordered queue, approve / reject buttons that call the services, read-only money."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import F, Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe

from accounts.models import Merchant
from channels.models import StatementDifference
from config.catalogue import failure_text
from config.crypto import pii_hash
from config.errors import DomainError, error_message
from config.history_admin import SafeHistoryAdmin
from config.money import yuan_label
from risk.presenters import explanation_html, labels_html, linked_accounts_html

if TYPE_CHECKING:
    from django_stubs_ext import StrPromise

from .attempts import AttemptView, attempts_of, routing_explanation
from .models import PayoutAnswer, Status, Withdrawal, WithdrawalApproval, WithdrawalEvent, WithdrawalPolicy
from .reconciliation import statement_difference_apply_channel, statement_difference_resolve
from .services import withdrawal_approve, withdrawal_reject


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

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ApprovalInline(admin.TabularInline):
    model = WithdrawalApproval
    extra = 0
    can_delete = False
    fields = ("reviewer", "note", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class StuckFilter(admin.SimpleListFilter):
    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request: HttpRequest, model_admin: ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "flagged as stuck")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Withdrawal]) -> QuerySet[Withdrawal]:
        return queryset.filter(stuck_flagged_at__isnull=False) if self.value() == "yes" else queryset


@admin.register(Withdrawal)
class WithdrawalAdmin(admin.ModelAdmin):
    change_form_template = "admin/withdrawals/withdrawal/change_form.html"
    list_display = (
        "id",
        "order_no",
        "merchant",
        "amount_yuan",
        "fee_yuan",
        "status_badge",
        "risk_outcome",
        "risk_score",
        "reasons",
        "approvals_given",
        "channel_code",
        "created_at",
    )
    list_filter = ("status", "risk_outcome", "speed", "channel_code", StuckFilter)
    search_fields = ("order_no", "merchant__name", "=id")
    date_hierarchy = "created_at"
    inlines = [ApprovalInline, EventInline]
    list_select_related = ("merchant",)
    readonly_fields = (
        "order_no",
        "merchant",
        "payout_account",
        "amount_yuan",
        "fee_yuan",
        "net_yuan",
        "currency",
        "speed",
        "status",
        "source",
        "client_ip",
        "device_id",
        "risk_outcome",
        "risk_score",
        "reasons",
        "risk_explanation_pretty",
        "required_approvals",
        "channel_code",
        "channel_reference",
        "routing_summary",
        "attempts_table",
        "quote",
        "attempts",
        "failure_code",
        "failure_reason",
        "stuck_flagged_at",
        "created_at",
        "state_changed_at",
        "paid_at",
    )
    fieldsets = (
        (
            "提现",
            {
                "fields": (
                    "order_no",
                    "merchant",
                    "payout_account",
                    ("amount_yuan", "fee_yuan", "net_yuan"),
                    "speed",
                    "status",
                    "source",
                    ("client_ip", "device_id"),
                )
            },
        ),
        (
            "风控",
            {"fields": ("risk_outcome", "risk_score", "reasons", "risk_explanation_pretty", "required_approvals")},
        ),
        (
            "通道",
            {
                "fields": (
                    "channel_code",
                    "channel_reference",
                    "routing_summary",
                    "attempts_table",
                    "quote",
                    "attempts",
                    "failure_code",
                    "failure_reason",
                    "stuck_flagged_at",
                )
            },
        ),
        ("时间", {"fields": ("created_at", "state_changed_at", "paid_at")}),
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # every change goes through the review buttons (services)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Withdrawal], search_term: str
    ) -> tuple[QuerySet[Withdrawal], bool]:
        """A full payout account number finds its withdrawals by keyed hash (the number is encrypted)."""
        results, distinct = super().get_search_results(request, queryset, search_term)
        term = "".join(search_term.split())
        if term:
            results = results | queryset.filter(payout_account__account_number_hash=pii_hash("account", term))
        return results, distinct

    @admin.display(description="金额", ordering="amount")
    def amount_yuan(self, obj: Withdrawal) -> str:
        return yuan_label(obj.amount)

    @admin.display(description="手续费")
    def fee_yuan(self, obj: Withdrawal) -> str:
        return yuan_label(obj.fee)

    @admin.display(description="到账金额")
    def net_yuan(self, obj: Withdrawal) -> str:
        return yuan_label(obj.net_amount)

    @admin.display(description="状态", ordering="status")
    def status_badge(self, obj: Withdrawal) -> str:
        colour = {
            "paid": "#16a34a",
            "failed": "#dc2626",
            "rejected": "#dc2626",
            "pending_review": "#d97706",
            "outcome_unknown": "#7c3aed",
        }.get(obj.status, "#2563eb")
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
        return failure_text(obj.failure_code, obj.failure_detail) or "—"

    @admin.display(description="风控解释")
    def risk_explanation_pretty(self, obj: Withdrawal) -> str:
        return format_html(
            "<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(obj.risk_explanation, ensure_ascii=False, indent=2)
        )

    # --- risk review: readable explanation, linked accounts, labels (risk issue) ----------------------------
    RISK_REVIEW_FIELDS = ("risk_summary", "linked_accounts", "risk_labels")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str] | tuple[str, ...]:
        return (*super().get_readonly_fields(request, obj), *self.RISK_REVIEW_FIELDS)

    # Any: the stubs type a fieldset's options as a private TypedDict.
    def get_fieldsets(
        self, request: HttpRequest, obj: Model | None = None
    ) -> list[tuple[str | StrPromise | None, Any]]:
        sets: list[tuple[str | StrPromise | None, Any]] = []
        for name, opts in super().get_fieldsets(request, obj):
            fields = tuple(opts.get("fields", ()))
            if "risk_explanation_pretty" in fields and "risk_summary" not in fields:
                at = fields.index("risk_explanation_pretty")
                fields = (*fields[:at], *self.RISK_REVIEW_FIELDS, *fields[at:])
            sets.append((name, {**opts, "fields": fields}))
        return sets

    @admin.display(description="风控解释（可读）")
    def risk_summary(self, obj: Withdrawal) -> str:
        return explanation_html(obj.risk_explanation or {})

    @admin.display(description="关联账户（同设备 / IP / 卡 / 手机 / 身份证）")
    def linked_accounts(self, obj: Withdrawal) -> str:
        def link_for(subject: str) -> tuple[str, str] | None:
            m = Merchant.objects.filter(external_ref=subject).first()
            if m is None and subject.isdigit():
                m = Merchant.objects.filter(pk=int(subject), external_ref="").first()
            return (reverse("admin:accounts_merchant_change", args=[m.pk]), str(m)) if m else None

        return linked_accounts_html(obj.merchant.risk_subject, link_for)

    @admin.display(description="训练标签")
    def risk_labels(self, obj: Withdrawal) -> str:
        return labels_html(str((obj.risk_explanation or {}).get("withdrawal_ref") or obj.pk))

    @admin.display(description="路由解释")
    def routing_summary(self, obj: Withdrawal) -> str:
        return routing_summary_html(routing_explanation(obj))

    @admin.display(description="出款尝试与通道回复")
    def attempts_table(self, obj: Withdrawal) -> str:
        return attempts_html(attempts_of(obj))

    # --- review buttons ---------------------------------------------------------------------------------
    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<int:pk>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="withdrawals_withdrawal_approve",
            ),
            path(
                "<int:pk>/reject/", self.admin_site.admin_view(self.reject_view), name="withdrawals_withdrawal_reject"
            ),
        ]
        return custom + super().get_urls()

    def _back(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Back to where the reviewer came from — only within this site (an open redirect here would send a
        reviewer, mid-review, to a look-alike console)."""
        nxt = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            nxt = reverse("admin:withdrawals_withdrawal_change", args=[pk])
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
            done = (
                "已通过，进入出款"
                if w.status == Status.APPROVED
                else f"已记录审批 {w.approvals.count()}/{w.required_approvals}"
            )
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

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
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
                amount_yuan=yuan_label(obj.amount),
                net_yuan=yuan_label(obj.net_amount),
            )
        return super().change_view(request, object_id, form_url, extra_context=extra)


@admin.register(ReviewQueue)
class ReviewQueueAdmin(WithdrawalAdmin):
    """Only what waits for a reviewer, riskiest and longest-waiting first."""

    list_filter = ("risk_outcome", "speed")  # type: ignore[assignment]
    date_hierarchy = None  # type: ignore[assignment]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .filter(status=Status.PENDING_REVIEW)
            .order_by(F("risk_score").desc(nulls_last=True), "created_at")
        )

    def get_urls(self) -> list[URLPattern]:
        return admin.ModelAdmin.get_urls(self)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method != "GET" or not self.has_view_permission(request):
            raise PermissionDenied  # the queue only links to the withdrawal's own page
        return HttpResponseRedirect(reverse("admin:withdrawals_withdrawal_change", args=[object_id]))

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.has_perm("withdrawals.view_withdrawal")


@admin.register(WithdrawalPolicy)
class WithdrawalPolicyAdmin(SafeHistoryAdmin):
    list_display = (
        "name",
        "active",
        "min_amount",
        "max_per_withdrawal",
        "daily_amount_limit",
        "daily_count_limit",
        "dual_approval_threshold",
        "updated_at",
    )


# --- routing explanation ----------------------------------------------------------------------------------
WINNER_STYLE = mark_safe(' style="background:#dcfce7;font-weight:bold"')  # a constant, no user input


def routing_summary_html(routing: dict) -> str:
    """The routing decision as a table: policy, winner and why, each candidate's score components or why not."""
    if not routing.get("candidates"):
        return "—"
    rows = format_html_join(
        "",
        "<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                WINNER_STYLE if c["channel"] == routing.get("winner") else "",
                c["channel"],
                c.get("rank", "—"),
                c.get("score", "—"),
                c["cost"],
                c["arrival"],
                "—" if c.get("success_rate") is None else f"{c['success_rate']:.1%}",
                c.get("breaker", ""),
                "; ".join(c.get("why_not") or [])
                or c.get("why_not_preferred", "")
                or ", ".join(f"{k}={v}" for k, v in (c.get("components") or {}).items()),
            )
            for c in routing["candidates"]
        ),
    )
    return format_html(
        "<p><b>策略</b> {}（{}）<br><b>结论</b> {}</p>"
        "<table><thead><tr><th>通道</th><th>排名</th><th>得分(低优)</th><th>费用(分)</th><th>到账(秒)</th>"
        "<th>成功率</th><th>熔断</th><th>不可用原因 / 得分构成</th></tr></thead><tbody>{}</tbody></table>",
        routing.get("policy_text") or routing.get("policy", ""),
        routing.get("policy_reason", ""),
        routing.get("why", ""),
        rows,
    )


def attempts_html(attempts: list[AttemptView]) -> str:
    """Each attempt at a channel with every answer it gave, in order (append-only PayoutAttempt / PayoutAnswer)."""
    if not attempts:
        return "—"
    outcome_text = dict(PayoutAnswer.Outcome.choices)
    lines: list[tuple[object, ...]] = []
    for a in attempts:
        channel = a.channel_name or a.channel_code
        if not a.answers:
            lines.append((a.number, channel, "", "", "（尚无回复）", "", ""))
        for answer in a.answers:
            lines.append(
                (
                    a.number,
                    channel,
                    timezone.localtime(answer["at"]).strftime("%Y-%m-%d %H:%M:%S"),
                    answer["source"],
                    outcome_text.get(answer["outcome"], answer["outcome"]),
                    " / ".join(x for x in (answer["reason_code"], answer["provider_code"], answer["action"]) if x),
                    "已换通道" if answer["moved_on"] else "",
                )
            )
    rows = format_html_join(
        "", "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", lines
    )
    return format_html(
        "<table><thead><tr><th>尝试</th><th>通道</th><th>时间</th><th>来源</th><th>结果</th><th>原因</th>"
        "<th></th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


# --- statement differences (channels' models, resolved through withdrawal services) ----------------------
@admin.register(StatementDifference)
class StatementDifferenceAdmin(admin.ModelAdmin):
    change_form_template = "admin/channels/statementdifference_change_form.html"
    list_display = (
        "order_no",
        "channel_code",
        "statement_date",
        "kind",
        "our_status",
        "their_status",
        "our_amount",
        "their_amount",
        "resolved_at",
        "resolution",
        "withdrawal_link",
    )
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "kind", "channel_code")
    search_fields = ("order_no", "channel_reference")
    readonly_fields = (
        "statement",
        "channel_code",
        "order_no",
        "kind",
        "our_status",
        "their_status",
        "our_amount",
        "their_amount",
        "channel_reference",
        "created_at",
        "resolved_at",
        "resolved_by",
        "resolution",
        "note",
        "withdrawal_link",
    )
    actions = ["follow_statement"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("payment_channels.view_channel")

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return request.user.has_perm("payment_channels.view_channel")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, tuple[Callable[..., str], str, str] | None]:
        actions = super().get_actions(request)
        if not request.user.has_perm("withdrawals.resolve_withdrawal"):
            actions.pop("follow_statement", None)
        return actions

    @admin.display(description="对账日", ordering="statement__date")
    def statement_date(self, obj: StatementDifference) -> str:
        return str(obj.statement.date)

    @admin.display(description="提现")
    def withdrawal_link(self, obj: StatementDifference) -> str:
        w = Withdrawal.objects.filter(order_no=obj.order_no).only("pk", "status").first()
        if w is None:
            return "—"
        url = reverse("admin:withdrawals_withdrawal_change", args=[w.pk])
        return format_html('<a href="{}">#{} {}</a>', url, w.pk, w.get_status_display())

    @admin.action(description="按通道对账单处理所选差异 (follow the statement)")
    def follow_statement(self, request: HttpRequest, queryset: QuerySet[StatementDifference]) -> None:
        for d in queryset.filter(resolved_at__isnull=True):
            try:
                status = statement_difference_apply_channel(difference_id=d.pk, by=request.user.get_username())
            except DomainError as exc:
                why = exc.details.get("difference", exc.message)
                self.message_user(request, f"{d.order_no}：{why}", messages.ERROR)
            else:
                self.message_user(request, f"{d.order_no}：已按对账单处理，提现状态 {status}", messages.SUCCESS)

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<int:pk>/resolve/",
                self.admin_site.admin_view(self.resolve_view),
                name="payment_channels_statementdifference_resolve",
            ),
        ]
        return custom + super().get_urls()

    def resolve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        d = get_object_or_404(StatementDifference, pk=pk)
        back = HttpResponseRedirect(reverse("admin:payment_channels_statementdifference_change", args=[pk]))
        if request.method != "POST":
            return back
        # The same people as the list page's bulk action: those who see the differences and resolve payouts.
        if not (self.has_view_permission(request, d) and request.user.has_perm("withdrawals.resolve_withdrawal")):
            self.message_user(request, error_message("permission_denied"), messages.ERROR)
            return back
        try:
            if "follow" in request.POST:
                status = statement_difference_apply_channel(difference_id=d.pk, by=request.user.get_username())
                self.message_user(request, f"已按对账单处理，提现状态 {status}", messages.SUCCESS)
            else:
                statement_difference_resolve(
                    difference_id=d.pk, by=request.user.get_username(), note=request.POST.get("note", "")
                )
                self.message_user(request, "已标记为已处理", messages.SUCCESS)
        except DomainError as exc:
            self.message_user(request, f"{exc.message}：{exc.details.get('difference') or exc.details}", messages.ERROR)
        return back

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra = {**(extra_context or {}), "can_resolve": request.user.has_perm("withdrawals.resolve_withdrawal")}
        return super().change_view(request, object_id, form_url, extra_context=extra)
