"""Merchant pages (server-rendered). The partner API lives under withdrawals.api."""

from django.urls import path

from . import views

app_name = "merchant"

urlpatterns = [
    path("login/", views.MerchantLoginView.as_view(), name="login"),
    path("logout/", views.MerchantLogoutView.as_view(), name="logout"),
    path("", views.dashboard, name="dashboard"),
    path("withdraw/", views.withdraw_start, name="withdraw"),
    path("withdraw/confirm/", views.withdraw_confirm, name="withdraw_confirm"),
    path("withdraw/quote/", views.withdraw_quote, name="withdraw_quote"),
    path("withdrawals/", views.withdrawal_list, name="withdrawal_list"),
    path("withdrawals/<int:pk>/", views.withdrawal_detail, name="withdrawal_detail"),
    path("withdrawals/<int:pk>/progress/", views.withdrawal_progress, name="withdrawal_progress"),
    path("withdrawals/<int:pk>/cancel/", views.withdrawal_cancel_view, name="withdrawal_cancel"),
    path("withdrawals/<int:pk>/verify/", views.withdrawal_verify_view, name="withdrawal_verify"),
    path("withdrawals/<int:pk>/resend/", views.withdrawal_resend_view, name="withdrawal_resend"),
    path("withdrawals/<int:pk>/retry/", views.withdrawal_retry_view, name="withdrawal_retry"),
    path("withdrawals/<int:pk>/face/", views.withdrawal_face_start_view, name="withdrawal_face_start"),
    path("withdrawals/<int:pk>/face/complete/", views.withdrawal_face_complete_view, name="withdrawal_face_complete"),
    path("security/totp/", views.security_totp, name="security_totp"),
    path("accounts/", views.payout_accounts, name="accounts"),
    path("accounts/<int:pk>/default/", views.payout_account_set_default, name="account_default"),
    path("notifications/", views.notifications, name="notifications"),
    path("notifications/read/", views.notifications_mark_read, name="notifications_read"),
]
