from django.contrib import admin

from .models import SmsMessage, StepUpChallenge


@admin.register(StepUpChallenge)
class StepUpChallengeAdmin(admin.ModelAdmin):
    list_display = ("subject", "merchant_id", "method", "expires_at", "attempts", "used_at")
    readonly_fields = ("code_hash",)


@admin.register(SmsMessage)
class SmsMessageAdmin(admin.ModelAdmin):
    list_display = ("phone", "text", "backend", "created_at")
