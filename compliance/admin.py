from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from config.errors import DomainError
from config.money import yuan_label

from .models import CustodyReconciliation, TransactionReport
from .selectors import reports_due_today, reports_open, reports_overdue
from .services import report_decide


class DeadlineFilter(admin.SimpleListFilter):
    """Due today / overdue / open: the compliance officer's work list (deadlines in working days)."""

    title = "报送期限 (deadline)"
    parameter_name = "due"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("today", "今日到期 (due today)"), ("overdue", "已逾期 (overdue)"), ("open", "待处理 (open)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[TransactionReport]) -> QuerySet[TransactionReport]:
        selected = {"today": reports_due_today, "overdue": reports_overdue, "open": lambda: reports_open()}
        if self.value() in selected:
            return queryset.filter(pk__in=selected[str(self.value())]().values("pk"))
        return queryset


@admin.register(TransactionReport)
class TransactionReportAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "subject_ref", "merchant_name", "amount_yuan", "deadline", "decided_by")
    list_filter = (DeadlineFilter, "kind", "status")
    search_fields = ("subject_ref", "merchant_name", "holder_name")
    actions = ["file_reports"]
    readonly_fields = [f.name for f in TransactionReport._meta.fields]

    @admin.display(description="金额", ordering="amount")
    def amount_yuan(self, obj: TransactionReport) -> str:
        return yuan_label(obj.amount)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # filed or dismissed through report_decide (the action), never edited

    def has_file_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("compliance.file_report")

    @admin.action(description="报送所选报告 (file)", permissions=["file"])
    def file_reports(self, request: HttpRequest, queryset: QuerySet[TransactionReport]) -> None:
        done = 0
        for report in queryset:
            try:
                report_decide(report_id=report.pk, officer=request.user, file=True, note="filed from the admin")
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{report}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, f"已报送 {done} 份报告", messages.SUCCESS)


@admin.register(CustodyReconciliation)
class CustodyReconciliationAdmin(admin.ModelAdmin):
    list_display = (
        "business_date",
        "ok",
        "custody_ledger",
        "merchant_funds",
        "platform_funds",
        "in_transit",
        "ledger_difference",
        "bank_balance",
        "bank_difference",
    )
    readonly_fields = [f.name for f in CustodyReconciliation._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # written by compliance_daily

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # the day's statement of segregated funds is a record to keep
