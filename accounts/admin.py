from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from simple_history.admin import SimpleHistoryAdmin

from wallets.selectors import wallet_balances

from .models import ApiKey, KycRecord, Merchant, MerchantTier, Notification, PayoutAccount, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (*BaseUserAdmin.fieldsets, ("Merchant", {"fields": ("merchant",)}))  # type: ignore[misc]
    list_display = ("username", "merchant", "is_staff", "is_active")
    raw_id_fields = ("merchant",)


class KycInline(admin.StackedInline):
    model = KycRecord
    extra = 0
    can_delete = False


class PayoutAccountInline(admin.TabularInline):
    model = PayoutAccount
    extra = 0
    can_delete = False
    fields = ("kind", "account_number", "holder_name", "bank_code", "status", "is_default", "created_at")
    readonly_fields = ("kind", "account_number", "holder_name", "bank_code", "created_at")


@admin.register(Merchant)
class MerchantAdmin(SimpleHistoryAdmin):
    list_display = ("id", "name", "kind", "category", "status", "tier", "balances", "created_at")
    list_filter = ("kind", "category", "status", "tier")
    search_fields = ("name", "external_ref", "kyc__real_name", "=id")
    inlines = [KycInline, PayoutAccountInline]
    readonly_fields = ("balances", "created_at", "tier", "tier_updated_at", "settled_volume")

    @admin.display(description="余额 (可提现 / 冻结 / 待结算 / 保证金)")
    def balances(self, obj: Merchant) -> str:
        b = wallet_balances(merchant_id=obj.pk)
        return f"¥{b.available / 100:,.2f} / ¥{b.held / 100:,.2f} / ¥{b.pending / 100:,.2f} / ¥{b.reserve / 100:,.2f}"


@admin.register(KycRecord)
class KycRecordAdmin(SimpleHistoryAdmin):
    list_display = ("merchant", "real_name", "status", "level", "provider", "verified_at")
    list_filter = ("status", "level", "provider")
    search_fields = ("real_name", "merchant__name")


@admin.register(PayoutAccount)
class PayoutAccountAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "merchant",
        "kind",
        "masked_number",
        "holder_name",
        "bank_code",
        "status",
        "is_default",
    )
    list_filter = ("kind", "status")
    search_fields = ("account_number", "holder_name", "merchant__name")
    readonly_fields = ("merchant", "kind", "account_number", "holder_name", "created_at")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "merchant", "label", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "merchant", "created_at", "last_used_at")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("merchant", "kind", "title", "created_at", "read_at")
    list_filter = ("kind",)


@admin.register(MerchantTier)
class MerchantTierAdmin(SimpleHistoryAdmin):
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
