from django.contrib import admin
from django.contrib.admin import ModelAdmin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from config.crypto import pii_hash
from config.history_admin import SafeHistoryAdmin

from .engine import ruleset_from_dict
from .models import (
    LearningLoopRun,
    ModelVersion,
    RiskDecisionLog,
    RiskLabel,
    RiskListEntry,
    RuleSetVersion,
    SmsMessage,
    StepUpChallenge,
)
from .services import LIST_KIND_PURPOSE, risk_engine_reset, risk_link_key


@admin.register(StepUpChallenge)
class StepUpChallengeAdmin(admin.ModelAdmin):
    list_display = ("subject", "merchant_id", "method", "expires_at", "attempts", "used_at", "provider_status")
    readonly_fields = ("code_hash",)


@admin.register(SmsMessage)
class SmsMessageAdmin(admin.ModelAdmin):
    """A log of what was sent: read-only, the phone masked (the full number is the merchant's KYC phone, revealed
    there by the audited reveal). Search: a full phone number (through the keyed hash) or a merchant id."""

    list_display = ("phone_masked", "merchant_id", "text", "backend", "created_at")
    fields = ("merchant_id", "phone_masked", "text", "backend", "created_at")
    readonly_fields = fields
    search_fields = ("text",)

    @admin.display(description="手机号")
    def phone_masked(self, obj: SmsMessage) -> str:
        return obj.phone_masked

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[SmsMessage], search_term: str
    ) -> tuple[QuerySet[SmsMessage], bool]:
        term = "".join(search_term.split())
        if term.isdigit() and len(term) == 11:  # a phone number: never compared in the clear
            return queryset.filter(phone_hash=pii_hash("phone", term)), False
        if term.isdigit():
            return queryset.filter(merchant_id=int(term)), False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: SmsMessage | None = None) -> bool:
        return False


class ActiveFilter(admin.SimpleListFilter):
    title = "active"
    parameter_name = "active"

    def lookups(self, request: HttpRequest, model_admin: ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "active"), ("no", "expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[RiskListEntry]) -> QuerySet[RiskListEntry]:
        now = timezone.now()
        if self.value() == "yes":
            return queryset.exclude(expires_at__lte=now)
        if self.value() == "no":
            return queryset.filter(expires_at__lte=now)
        return queryset


@admin.register(RiskListEntry)
class RiskListEntryAdmin(SafeHistoryAdmin):
    """High-risk list: edited here, every change audited (history). Cards, phones and identity numbers are
    listed by their link key (keyed hash): type the full number, it is stored hashed; search by the full number
    finds its entry."""

    list_display = ("kind", "value", "source", "reason", "expires_at", "is_active", "created_by", "created_at")
    list_filter = ("kind", "source", ActiveFilter)
    search_fields = ("value", "reason")
    readonly_fields = ("created_by", "created_at")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[RiskListEntry], search_term: str
    ) -> tuple[QuerySet[RiskListEntry], bool]:
        results, distinct = super().get_search_results(request, queryset, search_term)
        term = "".join(search_term.split())
        if term:
            keys = {risk_link_key(kind=kind, value=term) for kind in LIST_KIND_PURPOSE}
            results = results | queryset.filter(value__in=keys)
        return results, distinct

    @admin.display(boolean=True, description="生效")
    def is_active(self, obj: RiskListEntry) -> bool:
        return obj.expires_at is None or obj.expires_at > timezone.now()

    def save_model(self, request: HttpRequest, obj: RiskListEntry, form: ModelForm, change: bool) -> None:
        if not change and obj.created_by_id is None and request.user.is_authenticated:
            obj.created_by = request.user
        if obj.kind in LIST_KIND_PURPOSE:  # never the number itself
            obj.value = risk_link_key(kind=obj.kind, value="".join(obj.value.split()))
        super().save_model(request, obj, form, change)


@admin.register(RuleSetVersion)
class RuleSetVersionAdmin(SafeHistoryAdmin):
    list_display = ("version", "status", "rule_count", "notes", "updated_at")
    list_filter = ("status",)
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="rules")
    def rule_count(self, obj: RuleSetVersion) -> int:
        return len((obj.rules or {}).get("rules", []))

    def save_model(self, request: HttpRequest, obj: RuleSetVersion, form: ModelForm, change: bool) -> None:
        ruleset_from_dict(obj.rules)  # a malformed rule set never reaches the engine
        super().save_model(request, obj, form, change)
        risk_engine_reset()


@admin.register(ModelVersion)
class ModelVersionAdmin(SafeHistoryAdmin):
    list_display = ("version", "status", "held_out", "trained_on", "created_at")
    list_filter = ("status",)
    readonly_fields = ("artifact", "metrics", "trained_on", "created_at")

    @admin.display(description="held-out @0.5")
    def held_out(self, obj: ModelVersion) -> str:
        at = ((obj.metrics or {}).get("held_out") or {}).get("at_0.5") or {}
        return f"P {at.get('precision')} R {at.get('recall')} FPR {at.get('fpr')}" if at else "—"


@admin.register(RiskLabel)
class RiskLabelAdmin(admin.ModelAdmin):
    list_display = ("withdrawal_ref", "merchant_ref", "fraud", "source", "created_at")
    list_filter = ("source", "fraud")
    search_fields = ("withdrawal_ref", "merchant_ref")
    readonly_fields = ("features",)


@admin.register(RiskDecisionLog)
class RiskDecisionLogAdmin(admin.ModelAdmin):
    list_display = ("withdrawal_ref", "merchant_ref", "ts", "outcome", "score", "ruleset_version", "shadow_outcome")
    list_filter = ("outcome", "ruleset_version", "shadow_outcome")
    search_fields = ("withdrawal_ref", "merchant_ref", "ip", "device")

    def has_change_permission(self, request: HttpRequest, obj: RiskDecisionLog | None = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(LearningLoopRun)
class LearningLoopRunAdmin(admin.ModelAdmin):
    """The learning loop's reports: IPs / devices shared by several withdrawing accounts, labels, list entries."""

    list_display = ("ran_at", "window_start", "counts")
    readonly_fields = ("ran_at", "window_start", "counts", "shared_report")
    exclude = ("summary",)

    @admin.display(description="summary")
    def counts(self, obj: LearningLoopRun) -> str:
        s = obj.summary or {}
        return (
            f"fraud feedback {s.get('fraud_confirmed', 0)} → list entries {s.get('fraud_list_entries', 0)}; "
            f"clean labels {s.get('settled_clean_labels', 0)}; shared {len(s.get('shared', []))}, "
            f"listed {s.get('shared_listed', 0)}"
        )

    @admin.display(description="shared IPs / devices")
    def shared_report(self, obj: LearningLoopRun) -> str:
        rows = (obj.summary or {}).get("shared", [])
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    r["kind"],
                    r["value"],
                    r["accounts"],
                    r["withdrawals"],
                    ", ".join(r["merchants"]),
                    "✔" if r["listed"] else "",
                )
                for r in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>kind</th><th>value</th><th>accounts</th><th>withdrawals</th><th>merchants</th>"
            "<th>listed</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
