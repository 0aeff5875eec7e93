"""The ledger is read-only in the admin: money moves only through services. The merchant page gets its
balances column here."""

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from accounts.admin import MerchantAdmin as AccountsMerchantAdmin
from accounts.models import Merchant
from config.money import yuan_label

from .models import Entry, LedgerAccount, Transfer
from .selectors import wallet_balances


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "scope", "merchant", "currency", "balance", "updated_at")
    list_filter = ("kind", "currency")
    search_fields = ("scope", "merchant__name")


class EntryInline(admin.TabularInline):
    model = Entry
    extra = 0
    can_delete = False
    fields = ("account", "amount", "currency", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "reference", "description", "created_at")
    list_filter = ("kind",)
    search_fields = ("reference",)
    inlines = [EntryInline]


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "transfer", "account", "amount", "currency", "created_at")
    list_filter = ("currency",)


def _after(fields: tuple[str, ...], anchor: str, name: str) -> tuple[str, ...]:
    at = fields.index(anchor) + 1
    return (*fields[:at], name, *fields[at:])


# accounts sits below wallets and cannot read balances, so wallets extends accounts' merchant admin with the column
# (admin modules are loaded in INSTALLED_APPS order: accounts has registered Merchant by now).
admin.site.unregister(Merchant)


@admin.register(Merchant)
class MerchantAdmin(AccountsMerchantAdmin):
    list_display = _after(AccountsMerchantAdmin.list_display, "tier", "balances")
    readonly_fields = ("balances", *AccountsMerchantAdmin.readonly_fields)

    @admin.display(description="余额 (可提现 / 冻结 / 待结算 / 保证金)")
    def balances(self, obj: Merchant) -> str:
        b = wallet_balances(merchant_id=obj.pk)
        return " / ".join(yuan_label(fen) for fen in (b.available, b.held, b.pending, b.reserve))
