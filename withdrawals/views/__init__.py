"""Merchant pages (server-rendered), one module per area; withdrawals/urls.py maps each URL to its view.

- here: the portal's door, login and logout
- dashboard: the home page
- withdraw: a new withdrawal (form, confirm and submit, live fee quote)
- detail: one withdrawal after submission (list, detail, progress, cancel, step-up, retry)
- accounts: payout accounts and security (authenticator enrolment)
- notifications: the notification list, marking read
- common: what every page shares (the merchant-only decorator, the request's merchant, IP and device)

Thin: parse the request, call a selector or a service, render; DomainError.message is what the merchant reads
when a service says no."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpResponse

from accounts.services import login_record
from withdrawals.forms import MerchantAuthenticationForm

from .common import client_ip, device_id, request_merchant


class MerchantLoginView(auth_views.LoginView):
    template_name = "merchant/login.html"
    authentication_form = MerchantAuthenticationForm
    redirect_authenticated_user = True

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        login_record(
            merchant=request_merchant(self.request), ip=client_ip(self.request), device=device_id(self.request)
        )
        return response


class MerchantLogoutView(auth_views.LogoutView):
    next_page = "/login/"
