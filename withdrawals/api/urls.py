from django.urls import re_path
from drf_spectacular.views import SpectacularAPIView

from . import views

urlpatterns = [
    re_path(r"^wallet/?$", views.WalletView.as_view(), name="api-wallet"),
    re_path(r"^withdrawals/?$", views.WithdrawalListView.as_view(), name="api-withdrawals"),
    re_path(r"^withdrawals/(?P<pk>[0-9]{1,18})/?$", views.WithdrawalDetailView.as_view(), name="api-withdrawal"),
    re_path(
        r"^withdrawals/(?P<pk>[0-9]{1,18})/cancel/?$",
        views.WithdrawalCancelView.as_view(),
        name="api-withdrawal-cancel",
    ),
    re_path(r"^payout-accounts/?$", views.PayoutAccountListView.as_view(), name="api-payout-accounts"),
    re_path(
        r"^payout-accounts/(?P<pk>[0-9]{1,18})/?$",
        views.PayoutAccountDetailView.as_view(),
        name="api-payout-account",
    ),
    re_path(
        r"^schema/?$",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="api-schema",
    ),
]
