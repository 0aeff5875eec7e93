from django.urls import re_path

from . import views

urlpatterns = [
    re_path(r"^$", views.api_root, name="api-root"),
    re_path(r"^wallet/?$", views.WalletView.as_view(), name="api-wallet"),
    re_path(r"^withdrawals/?$", views.WithdrawalListView.as_view(), name="api-withdrawals"),
    re_path(r"^withdrawals/(?P<pk>[0-9]{1,18})/?$", views.WithdrawalDetailView.as_view(), name="api-withdrawal"),
    re_path(
        r"^withdrawals/(?P<pk>[0-9]{1,18})/cancel/?$",
        views.WithdrawalCancelView.as_view(),
        name="api-withdrawal-cancel",
    ),
    re_path(
        r"^withdrawals/(?P<pk>[0-9]{1,18})/events/?$",
        views.WithdrawalEventsView.as_view(),
        name="api-withdrawal-events",
    ),
    re_path(r"^quotes/?$", views.QuoteView.as_view(), name="api-quotes"),
    re_path(r"^payout-accounts/?$", views.PayoutAccountListView.as_view(), name="api-payout-accounts"),
    re_path(
        r"^payout-accounts/(?P<pk>[0-9]{1,18})/?$",
        views.PayoutAccountDetailView.as_view(),
        name="api-payout-account",
    ),
    re_path(r"^schema/?$", views.SchemaView.as_view(), name="api-schema"),
    re_path(r"^docs/?$", views.DocsView.as_view(), name="api-docs"),
]
