from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import Channel, SandboxPayout


@admin.register(Channel)
class ChannelAdmin(SimpleHistoryAdmin):
    list_display = ("code", "name", "adapter", "enabled", "paused", "priority", "fee_fixed", "fee_rate_bp",
                    "expected_arrival_seconds", "max_amount")
    list_filter = ("adapter", "enabled", "paused")


@admin.register(SandboxPayout)
class SandboxPayoutAdmin(admin.ModelAdmin):
    list_display = ("order_no", "channel_code", "amount", "status", "reason_code", "submissions", "created_at")
    search_fields = ("order_no",)
    list_filter = ("status",)
