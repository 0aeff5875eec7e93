from datetime import date
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import UploadedFile
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from config.errors import DomainError
from config.money import yuan_label

from .exports import reports_csv, reports_xml
from .models import CustodyReconciliation, ScreeningHit, ScreeningList, TransactionReport
from .presenters import grounds_sentences
from .screening import screening_list_import
from .selectors import reports_due_today, reports_open, reports_overdue
from .services import (
    BankStatement,
    custody_bank_balance_enter,
    custody_bank_statement_import,
    report_dismiss,
    report_file,
    report_narrative_edit,
    report_review,
    yuan_to_fen,
)


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
    """Reports move draft → reviewed → filed or dismissed only through compliance.services (the list's actions
    and the buttons on a report's page); the rows are never edited or deleted here."""

    change_form_template = "admin/compliance/transactionreport_change_form.html"
    list_display = (
        "id",
        "kind",
        "status",
        "subject_ref",
        "merchant_name",
        "amount_yuan",
        "deadline",
        "reviewed_by",
        "decided_by",
    )
    list_filter = (DeadlineFilter, "kind", "status")
    search_fields = ("subject_ref", "merchant_name", "holder_name")
    actions = ["review_reports", "file_reports", "export_csv", "export_xml"]
    fields = (
        "kind",
        "status",
        "subject_ref",
        "merchant_id",
        "merchant_name",
        "holder_name",
        "id_number_masked",
        "account_masked",
        "amount_yuan",
        "currency",
        "channel",
        "occurred_at",
        "grounds_text",
        "deadline",
        "narrative",
        "created_at",
        "reviewed_by",
        "reviewed_at",
        "review_note",
        "decided_by",
        "decided_at",
        "decision_note",
    )
    readonly_fields = fields

    @admin.display(description="金额", ordering="amount")
    def amount_yuan(self, obj: TransactionReport) -> str:
        return yuan_label(obj.amount)

    @admin.display(description="报告理由 (grounds)")
    def grounds_text(self, obj: TransactionReport) -> str:
        return format_html(
            "<ol>{}</ol>", format_html_join("", "<li>{}</li>", ((s,) for s in grounds_sentences(obj.grounds)))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # moved through the services (actions, buttons), never edited

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("compliance.review_report")

    def has_file_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("compliance.file_report")

    def _bulk(self, request: HttpRequest, queryset: QuerySet[TransactionReport], step: Any, done_text: str) -> None:
        done = 0
        for report in queryset:
            try:
                step(report_id=report.pk, officer=request.user)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{report}: {exc.message}", messages.ERROR)
        if done:
            self.message_user(request, done_text.format(done), messages.SUCCESS)

    @admin.action(description="复核所选报告 (review)", permissions=["review"])
    def review_reports(self, request: HttpRequest, queryset: QuerySet[TransactionReport]) -> None:
        self._bulk(request, queryset, report_review, "已复核 {} 份报告")

    @admin.action(description="报送所选已复核报告 (file)", permissions=["file"])
    def file_reports(self, request: HttpRequest, queryset: QuerySet[TransactionReport]) -> None:
        self._bulk(request, queryset, report_file, "已报送 {} 份报告")

    @admin.action(description="导出所选报告 CSV (export for filing)", permissions=["file"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[TransactionReport]) -> HttpResponse:
        response = HttpResponse(reports_csv(queryset.order_by("pk")), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="transaction-reports.csv"'
        return response

    @admin.action(description="导出所选报告 XML (export for filing, XSD-valid)", permissions=["file"])
    def export_xml(self, request: HttpRequest, queryset: QuerySet[TransactionReport]) -> HttpResponse:
        response = HttpResponse(reports_xml(queryset.order_by("pk")), content_type="application/xml")
        response["Content-Disposition"] = 'attachment; filename="transaction-reports.xml"'
        return response

    # --- the buttons on a report's page --------------------------------------------------------------------
    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        report = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if report is not None:
            status = TransactionReport.Status
            extra.update(
                can_review=self.has_review_permission(request) and report.status == status.DRAFT,
                can_edit_narrative=self.has_review_permission(request)
                and report.status in (status.DRAFT, status.REVIEWED),
                can_decide=self.has_file_permission(request) and report.status == status.REVIEWED,
                is_reviewer=report.reviewed_by_id == request.user.pk,
            )
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[URLPattern]:
        def step(name: str) -> URLPattern:
            return path(
                f"<int:pk>/{name}/",
                self.admin_site.admin_view(lambda request, pk: self._step(request, pk, name)),
                name=f"compliance_transactionreport_{name}",
            )

        return [step("review"), step("narrative"), step("file"), step("dismiss"), *super().get_urls()]

    def _step(self, request: HttpRequest, pk: int, name: str) -> HttpResponse:
        get_object_or_404(TransactionReport, pk=pk)
        back = HttpResponseRedirect(reverse("admin:compliance_transactionreport_change", args=[pk]))
        if request.method != "POST":
            return back
        text = request.POST.get("text", "")
        try:
            if name == "review":
                report_review(report_id=pk, officer=request.user, note=text)
                self.message_user(request, "报告已复核", messages.SUCCESS)
            elif name == "narrative":
                report_narrative_edit(report_id=pk, officer=request.user, narrative=text)
                self.message_user(request, "案情说明已保存", messages.SUCCESS)
            elif name == "file":
                report_file(report_id=pk, officer=request.user, note=text)
                self.message_user(request, "报告已报送", messages.SUCCESS)
            else:
                report_dismiss(report_id=pk, officer=request.user, reason=text)
                self.message_user(request, "报告已排除", messages.SUCCESS)
        except DomainError as exc:
            if exc.code == "permission_denied":
                raise PermissionDenied from None
            self.message_user(request, exc.message, messages.ERROR)
        return back


def _yuan_column(field: str, title: str) -> Any:
    @admin.display(description=title, ordering=field)
    def column(model_admin: admin.ModelAdmin, obj: CustodyReconciliation) -> str:
        return yuan_label(getattr(obj, field))

    return column


@admin.register(CustodyReconciliation)
class CustodyReconciliationAdmin(admin.ModelAdmin):
    """The day's statement of segregated funds, written by compliance_daily; the custodian bank's balance (and
    sub-accounts) is entered on the 录入银行余额 page or imported from the bank's statement CSV."""

    change_list_template = "admin/compliance/custodyreconciliation_change_list.html"
    list_display = (
        "business_date",
        "ok",
        "custody_ledger_yuan",
        "merchant_funds_yuan",
        "platform_funds_yuan",
        "in_transit_yuan",
        "ledger_difference_yuan",
        "bank_balance_yuan",
        "bank_difference_yuan",
        "merchant_difference_yuan",
        "platform_difference_yuan",
        "in_transit_difference_yuan",
    )
    readonly_fields = [f.name for f in CustodyReconciliation._meta.fields]
    custody_ledger_yuan = _yuan_column("custody_ledger", "账面托管")
    merchant_funds_yuan = _yuan_column("merchant_funds", "商户资金")
    platform_funds_yuan = _yuan_column("platform_funds", "平台资金")
    in_transit_yuan = _yuan_column("in_transit", "通道在途")
    ledger_difference_yuan = _yuan_column("ledger_difference", "账内差额")
    bank_balance_yuan = _yuan_column("bank_balance", "银行余额")
    bank_difference_yuan = _yuan_column("bank_difference", "银行 − 账面")
    merchant_difference_yuan = _yuan_column("merchant_difference", "商户资金差额")
    platform_difference_yuan = _yuan_column("platform_difference", "平台资金差额")
    in_transit_difference_yuan = _yuan_column("in_transit_difference", "在途差额")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # written by compliance_daily; the bank's figures through the bank page

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # the day's statement of segregated funds is a record to keep

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {**(extra_context or {}), "can_enter_bank": request.user.has_perm("compliance.enter_bank_balance")}
        return super().changelist_view(request, extra)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "bank/",
                self.admin_site.admin_view(self.bank_view),
                name="compliance_custodyreconciliation_bank",
            ),
            *super().get_urls(),
        ]

    def bank_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("compliance.enter_bank_balance"):
            raise PermissionDenied
        if request.method == "POST":
            try:
                upload = request.FILES.get("statement")
                if isinstance(upload, UploadedFile):
                    records = custody_bank_statement_import(
                        text=upload.read().decode("utf-8-sig"), by=request.user, source=f"csv:{upload.name}"
                    )
                else:
                    parts = {
                        k: yuan_to_fen(request.POST[k]) if request.POST.get(k, "").strip() else None
                        for k in ("merchant_funds", "platform_funds", "in_transit")
                    }
                    bank = BankStatement(balance=yuan_to_fen(request.POST.get("balance", "")), **parts)
                    day = date.fromisoformat(request.POST.get("business_date", "").strip())
                    records = [custody_bank_balance_enter(business_date=day, bank=bank, by=request.user)]
            except ValueError as exc:
                self.message_user(request, f"未能录入：{exc}", messages.ERROR)
            except DomainError as exc:
                self.message_user(request, f"未能录入：{exc.message} {exc.details or ''}", messages.ERROR)
            else:
                for r in records:
                    level = messages.SUCCESS if r.ok else messages.WARNING
                    text = "平" if r.ok else f"不平：银行 − 账面 {yuan_label(r.bank_difference)}"
                    self.message_user(
                        request, f"{r.business_date} 已录入银行余额 {yuan_label(r.bank_balance)}，{text}", level
                    )
                return HttpResponseRedirect(reverse("admin:compliance_custodyreconciliation_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "录入托管银行余额 (custody bank balance)",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/compliance/custody_bank.html", context)


class _ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(ScreeningList)
class ScreeningListAdmin(_ReadOnlyAdmin):
    """Sanctions / PEP list versions, each kept; a new version is imported from CSV on the 导入名单 page."""

    change_list_template = "admin/compliance/screeninglist_change_list.html"
    list_display = ("name", "version", "active", "entries_count", "source", "imported_by", "imported_at")
    list_filter = ("name", "active")
    readonly_fields = [f.name for f in ScreeningList._meta.fields]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra = {**(extra_context or {}), "can_import": request.user.has_perm("compliance.add_screeninglist")}
        return super().changelist_view(request, extra)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="compliance_screeninglist_import"), *super().get_urls()]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("compliance.add_screeninglist"):
            raise PermissionDenied
        if request.method == "POST":
            upload = request.FILES.get("entries")
            try:
                if not isinstance(upload, UploadedFile):
                    raise ValueError("choose the list's CSV file")
                lst = screening_list_import(
                    text=upload.read().decode("utf-8-sig"),
                    name=request.POST.get("name", ""),
                    version=request.POST.get("version", ""),
                    by=request.user,
                    source=upload.name or "",
                )
            except ValueError as exc:
                self.message_user(request, f"未能导入：{exc}", messages.ERROR)
            except DomainError as exc:
                self.message_user(request, f"未能导入：{exc.message} {exc.details or ''}", messages.ERROR)
            else:
                self.message_user(request, f"已导入 {lst}（{lst.entries_count} 条）", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:compliance_screeninglist_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "导入制裁 / PEP 名单 (screening list)",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/compliance/screening_import.html", context)


@admin.register(ScreeningHit)
class ScreeningHitAdmin(_ReadOnlyAdmin):
    list_display = ("created_at", "context", "subject_ref", "screened_name", "matched_name", "matched_on", "score",
                    "screening_list")  # fmt: skip
    list_filter = ("context", "matched_on", "screening_list")
    search_fields = ("subject_ref", "screened_name", "matched_name")
    readonly_fields = [f.name for f in ScreeningHit._meta.fields]
