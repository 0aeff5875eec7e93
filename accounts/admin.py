"""Merchants, KYC, payout accounts, API keys, tiers, audit events.

Personal numbers are masked on every page here. Identity fields are read-only for everyone: a change goes
through ``kyc_identity_change`` (resets verification) on its own page, and the full numbers are shown only by
the audited reveal page to users with ``accounts.reveal_pii``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.cache import never_cache

from config.crypto import pii_hash
from config.errors import DomainError
from config.history_admin import SafeHistoryAdmin

from .models import ApiKey, AuditEvent, KycRecord, Merchant, MerchantTier, Notification, PayoutAccount, User
from .services import kyc_identity_change, pii_reveal


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (*BaseUserAdmin.fieldsets, ("Merchant", {"fields": ("merchant",)}))  # type: ignore[misc]
    list_display = ("username", "merchant", "is_staff", "is_active")
    raw_id_fields = ("merchant",)


class KycInline(admin.StackedInline):
    model = KycRecord
    extra = 0
    can_delete = False
    fields = ("real_name", "id_number_masked", "phone_masked", "status", "level", "verified_at", "provider")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="身份证号")
    def id_number_masked(self, obj: KycRecord) -> str:
        return obj.id_number_masked

    @admin.display(description="手机号")
    def phone_masked(self, obj: KycRecord) -> str:
        return obj.phone_masked


class PayoutAccountInline(admin.TabularInline):
    model = PayoutAccount
    extra = 0
    can_delete = False
    fields = ("kind", "masked_number", "holder_name", "bank_code", "status", "is_default", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Merchant)
class MerchantAdmin(SafeHistoryAdmin):
    # wallets.admin adds the balances column: accounts sits below wallets and cannot read them.
    list_display: tuple[str, ...] = ("id", "name", "kind", "category", "status", "tier", "created_at")
    list_filter = ("kind", "category", "status", "tier")
    search_fields = ("name", "external_ref", "kyc__real_name", "=id")
    inlines = [KycInline, PayoutAccountInline]
    readonly_fields: tuple[str, ...] = ("created_at", "tier", "tier_updated_at", "settled_volume")
    # Compliance may freeze and unfreeze a merchant; everything else about a merchant is the superuser's.
    STAFF_EDITABLE = ("status",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        editable = [f.name for f in Merchant._meta.fields if f.editable and f.name not in self.STAFF_EDITABLE]
        return (*fields, *(f for f in editable if f not in fields and f != "id"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser  # merchants register themselves (merchant_register)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RevealForm(forms.Form):
    reason = forms.CharField(label="查看原因（将被记录）", max_length=255)


class _RevealMixin:
    """A "查看完整号码" page: asks why, records who revealed what and when, then shows the full numbers once.
    The admin using it sets ``change_form_template = "admin/accounts/change_form_pii.html"`` (the button)."""

    reveal_labels: dict[str, str] = {}

    def _reveal_urls(self) -> list[Any]:
        opts = self.model._meta  # type: ignore[attr-defined]
        return [
            path(
                "<int:pk>/reveal/",
                self.admin_site.admin_view(never_cache(self.reveal_view)),  # type: ignore[attr-defined]
                name=f"{opts.app_label}_{opts.model_name}_reveal",
            )
        ]

    def reveal_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = get_object_or_404(self.model, pk=pk)  # type: ignore[attr-defined]
        if not request.user.has_perm("accounts.reveal_pii"):
            raise PermissionDenied
        revealed: dict[str, str] | None = None
        form = RevealForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                values = pii_reveal(target=obj, by=request.user, reason=form.cleaned_data["reason"])  # type: ignore[arg-type]
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                revealed = {self.reveal_labels.get(k, k): v for k, v in values.items() if v}
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": f"查看完整号码：{obj}",
            "opts": self.model._meta,  # type: ignore[attr-defined]
            "original": obj,
            "form": form,
            "revealed": revealed,
        }
        response = TemplateResponse(request, "admin/accounts/reveal.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        opts = self.model._meta  # type: ignore[attr-defined]
        extra = {
            **(extra_context or {}),
            "can_reveal": request.user.has_perm("accounts.reveal_pii"),
            "reveal_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_reveal", args=[object_id])
            if str(object_id).isdigit()
            else "",
        }
        extra.update(self.extra_change_context(request, object_id))
        return super().change_view(request, object_id, form_url, extra_context=extra)  # type: ignore[misc]

    def extra_change_context(self, request: HttpRequest, object_id: str) -> dict[str, Any]:
        return {}


class IdentityChangeForm(forms.Form):
    real_name = forms.CharField(label="真实姓名", max_length=100)
    id_number = forms.CharField(label="身份证号（不改请留空）", max_length=18, required=False)
    phone = forms.CharField(label="手机号（不改请留空）", max_length=20, required=False)
    reason = forms.CharField(label="变更原因（将被记录）", max_length=255)


@admin.register(KycRecord)
class KycRecordAdmin(_RevealMixin, SafeHistoryAdmin):
    change_form_template = "admin/accounts/change_form_pii.html"
    list_display = ("merchant", "real_name", "id_number_masked", "phone_masked", "status", "level", "verified_at")
    list_filter = ("status", "level", "provider")
    search_fields = ("real_name", "merchant__name")
    fields = (
        "merchant",
        "real_name",
        "id_number_masked",
        "phone_masked",
        "status",
        "level",
        "verified_at",
        "provider",
        "provider_ref",
        "four_elements_card_masked",
        "created_at",
    )
    readonly_fields = fields
    reveal_labels = {"id_number": "身份证号", "phone": "手机号", "four_elements_card": "四要素银行卡"}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created by merchant_register

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # identity changes go through the identity page (kyc_identity_change)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        """A full ID or phone number finds its record by keyed hash (the columns are encrypted)."""
        results, distinct = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            results = results | queryset.filter(id_number_hash=pii_hash("id_number", term.upper()))
            results = results | queryset.filter(phone_hash=pii_hash("phone", term))
        return results, distinct

    @admin.display(description="身份证号")
    def id_number_masked(self, obj: KycRecord) -> str:
        return obj.id_number_masked

    @admin.display(description="手机号")
    def phone_masked(self, obj: KycRecord) -> str:
        return obj.phone_masked

    @admin.display(description="四要素银行卡")
    def four_elements_card_masked(self, obj: KycRecord) -> str:
        return obj.four_elements_card_masked or "—"

    def get_urls(self) -> list[Any]:
        return [
            *self._reveal_urls(),
            path(
                "<int:pk>/identity/",
                self.admin_site.admin_view(self.identity_view),
                name="accounts_kycrecord_identity",
            ),
            *super().get_urls(),
        ]

    def extra_change_context(self, request: HttpRequest, object_id: str) -> dict[str, Any]:
        can = request.user.has_perm("accounts.change_kyc_identity") and str(object_id).isdigit()
        return {"identity_url": reverse("admin:accounts_kycrecord_identity", args=[object_id]) if can else ""}

    def identity_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        kyc = get_object_or_404(KycRecord, pk=pk)
        if not request.user.has_perm("accounts.change_kyc_identity"):
            raise PermissionDenied
        form = IdentityChangeForm(request.POST or None, initial={"real_name": kyc.real_name})
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                kyc_identity_change(
                    merchant=kyc.merchant,
                    by=request.user,  # type: ignore[arg-type]
                    reason=data["reason"],
                    real_name=data["real_name"],
                    id_number=data["id_number"] or None,
                    phone=data["phone"] or None,
                )
            except DomainError as exc:
                form.add_error(None, f"{exc.message} {exc.details or ''}")
            else:
                self.message_user(request, "实名信息已变更，认证已重置为待审核；重新认证前不能提现", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:accounts_kycrecord_change", args=[pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"变更实名信息：{kyc.merchant}",
            "opts": KycRecord._meta,
            "original": kyc,
            "form": form,
            "masked": {"身份证号": kyc.id_number_masked, "手机号": kyc.phone_masked},
        }
        return TemplateResponse(request, "admin/accounts/identity_change.html", context)


@admin.register(PayoutAccount)
class PayoutAccountAdmin(_RevealMixin, admin.ModelAdmin):
    change_form_template = "admin/accounts/change_form_pii.html"
    list_display = ("id", "merchant", "kind", "masked_number", "holder_name", "bank_code", "status", "is_default")
    list_filter = ("kind", "status")
    search_fields = ("holder_name", "merchant__name")
    fields = ("merchant", "kind", "masked_number", "holder_name", "bank_code", "status", "is_default", "created_at")
    readonly_fields = ("merchant", "kind", "masked_number", "holder_name", "bank_code", "created_at")
    reveal_labels = {"account_number": "账号"}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # bound by the merchant (payout_account_add), with the risk and KYC checks

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # withdrawals reference it; disable it instead

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        results, distinct = super().get_search_results(request, queryset, search_term)
        term = "".join(search_term.split())
        if term:
            results = results | queryset.filter(account_number_hash=pii_hash("account", term))
        return results, distinct

    @admin.display(description="账号")
    def masked_number(self, obj: PayoutAccount) -> str:
        return obj.masked_number

    def get_urls(self) -> list[Any]:
        return [*self._reveal_urls(), *super().get_urls()]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "merchant", "label", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "merchant", "created_at", "last_used_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # created by api_key_create, which shows the secret once


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("merchant", "kind", "title", "created_at", "read_at")
    list_filter = ("kind",)


@admin.register(MerchantTier)
class MerchantTierAdmin(SafeHistoryAdmin):
    """Tiers and their limits (fen). Changes are audited; merchants move on the next refresh."""

    list_display = (
        "rank",
        "code",
        "name",
        "min_kyc_level",
        "min_account_age_days",
        "min_settled_volume",
        "require_clean_history",
        "per_payout_limit",
        "daily_limit",
        "monthly_limit",
        "active",
    )
    list_editable = ("per_payout_limit", "daily_limit", "monthly_limit", "active")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Who revealed or changed personal data, and why. Append-only (the database refuses updates)."""

    list_display = ("created_at", "action", "actor_label", "target_type", "target_id", "merchant", "reason")
    list_filter = ("action", "target_type")
    search_fields = ("actor_label", "target_id", "reason")
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
