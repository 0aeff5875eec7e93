"""Merchant pages (server-rendered). The partner API lives under withdrawals.api."""

from django.urls import path

from . import views
from .views import accounts, dashboard, detail, notifications, settlement, statement, webhooks, withdraw

app_name = "merchant"

urlpatterns = [
    path("login/", views.MerchantLoginView.as_view(), name="login"),
    path("logout/", views.MerchantLogoutView.as_view(), name="logout"),
    path("", dashboard.dashboard, name="dashboard"),
    path("withdraw/", withdraw.withdraw_start, name="withdraw"),
    path("withdraw/confirm/", withdraw.withdraw_confirm, name="withdraw_confirm"),
    path("withdraw/quote/", withdraw.withdraw_quote, name="withdraw_quote"),
    path("withdrawals/", detail.withdrawal_list, name="withdrawal_list"),
    path("withdrawals/<int:pk>/", detail.withdrawal_detail, name="withdrawal_detail"),
    path("withdrawals/<int:pk>/progress/", detail.withdrawal_progress, name="withdrawal_progress"),
    path("withdrawals/<int:pk>/cancel/", detail.withdrawal_cancel_view, name="withdrawal_cancel"),
    path("withdrawals/<int:pk>/verify/", detail.withdrawal_verify_view, name="withdrawal_verify"),
    path("withdrawals/<int:pk>/resend/", detail.withdrawal_resend_view, name="withdrawal_resend"),
    path("withdrawals/<int:pk>/retry/", detail.withdrawal_retry_view, name="withdrawal_retry"),
    path("withdrawals/<int:pk>/face/", detail.withdrawal_face_start_view, name="withdrawal_face_start"),
    path("withdrawals/<int:pk>/face/complete/", detail.withdrawal_face_complete_view, name="withdrawal_face_complete"),
    path("withdrawals/<int:pk>/receipt.pdf", statement.withdrawal_receipt, name="withdrawal_receipt"),
    path("statement/", statement.statement_page, name="statement"),
    path("settlement/", settlement.settlement_page, name="settlement"),
    path("settlement/toggle/", settlement.settlement_toggle, name="settlement_toggle"),
    path("statement.csv", statement.statement_csv, name="statement_csv"),
    path("security/totp/", accounts.security_totp, name="security_totp"),
    path("accounts/", accounts.payout_accounts, name="accounts"),
    path("accounts/<int:pk>/default/", accounts.payout_account_set_default, name="account_default"),
    path("notifications/", notifications.notifications, name="notifications"),
    path("notifications/read/", notifications.notifications_mark_read, name="notifications_read"),
    path("webhooks/", webhooks.webhooks_page, name="webhooks"),
    path("webhooks/endpoints/<int:pk>/test/", webhooks.webhook_endpoint_test, name="webhook_endpoint_test"),
    path("webhooks/endpoints/<int:pk>/toggle/", webhooks.webhook_endpoint_toggle, name="webhook_endpoint_toggle"),
    path("webhooks/deliveries/<int:pk>/", webhooks.webhook_delivery_detail, name="webhook_delivery"),
    path("webhooks/deliveries/<int:pk>/replay/", webhooks.webhook_delivery_replay, name="webhook_delivery_replay"),
]
