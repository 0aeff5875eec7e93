"""The staff console: Django's admin with a second factor for every staff login (django-otp's ``OTPAdminSite``:
a session is admitted only once a TOTP device of its user verified a token).

Login is two steps. ``/admin/login/`` takes the password (django-axes counts failures and locks per IP and per
account); then ``/admin/otp/`` asks for the authenticator's 6-digit code, or — for staff who have no device yet —
``/admin/otp/enrol/`` shows a fresh key as a QR code and admits the session once a first code confirms it. A wrong
code counts as a failed login too. A superuser re-opens enrolment for somebody who lost their phone by deleting
their device (OTP_TOTP › TOTP devices), and lifts a lockout by deleting the attempt (Axes › Access attempts).

In demo mode (never in production) the code page also shows the current code of a demo device, so the demo runs
from one browser."""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlencode

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp import login as otp_login
from django_otp.admin import OTPAdminSite
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from .errors import DomainError
from .security import axes_lockout_response
from .totp import totp_device_of, totp_enrol_confirm, totp_enrol_start, totp_qr_svg

log = logging.getLogger(__name__)
PENDING_DEVICE_KEY = "_admin_otp_pending_device"
DEMO_DEVICE_NAME = "demo"


class StaffAdminSite(OTPAdminSite):
    site_header = "提现平台 · 管理后台"
    site_title = "提现平台管理后台"
    # The password step is Django's own form; the code step is a page of its own (see the module docstring).
    login_form = None
    login_template = None

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        if self._password_only(request):
            return self._to_second_factor(request)
        return super().login(request, extra_context)

    @staticmethod
    def _password_only(request: HttpRequest) -> bool:
        user = request.user
        verified = getattr(user, "is_verified", lambda: False)  # set by django-otp's OTPMiddleware
        return bool(user.is_authenticated and user.is_active and user.is_staff and not verified())

    def _next(self, request: HttpRequest) -> str:
        target = request.POST.get("next") or request.GET.get("next") or ""
        if url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return target
        return reverse("admin:index", current_app=self.name)

    def _to_second_factor(self, request: HttpRequest) -> HttpResponse:
        name = "admin:otp_verify" if totp_device_of(request.user) is not None else "admin:otp_enrol"
        return HttpResponseRedirect(
            f"{reverse(name, current_app=self.name)}?{urlencode({'next': self._next(request)})}"
        )

    def get_urls(self) -> list[URLPattern | URLResolver]:
        custom = [
            path("otp/", self.otp_verify_view, name="otp_verify"),
            path("otp/enrol/", self.otp_enrol_view, name="otp_enrol"),
        ]
        return custom + super().get_urls()

    # --- the code step ----------------------------------------------------------------------------------
    def _context(self, request: HttpRequest, **extra: object) -> dict:
        return {**self.each_context(request), "next": self._next(request), **extra}

    def _failed(self, request: HttpRequest) -> HttpResponse | None:
        """A wrong code is a failed login for the lockout (per account and IP); once locked, the half-open
        session ends too."""
        user_login_failed.send(
            sender=type(self), credentials={"username": request.user.get_username()}, request=request
        )
        if getattr(request, "axes_locked_out", False):
            logout(request)
        return None

    def _locked(self, request: HttpRequest) -> bool:
        return not AxesProxyHandler.is_allowed(request, {"username": request.user.get_username()})

    def _admit(self, request: HttpRequest, device: TOTPDevice) -> HttpResponse:
        request.session.cycle_key()  # the session's privilege changes: a new id
        otp_login(request, device)
        request.session.pop(PENDING_DEVICE_KEY, None)
        return HttpResponseRedirect(self._next(request))

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def otp_verify_view(self, request: HttpRequest) -> HttpResponse:
        if not self._password_only(request):
            return HttpResponseRedirect(reverse("admin:login", current_app=self.name))
        device = totp_device_of(request.user)
        if device is None:
            return self._to_second_factor(request)
        if self._locked(request):
            logout(request)
            return axes_lockout_response(request)
        error = ""
        if request.method == "POST":
            token = request.POST.get("otp_token", "").strip()
            allowed, _info = device.verify_is_allowed()
            if not allowed:
                error = "尝试过于频繁，请稍等几秒再输入"
            elif token.isdigit() and device.verify_token(token):
                return self._admit(request, device)
            else:
                error = "动态口令不正确，请输入身份验证器 App 中当前显示的 6 位数字"
                self._failed(request)
        demo_code = ""
        if settings.DEMO_MODE and device.name == DEMO_DEVICE_NAME:
            demo_code = f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"
        return render(
            request,
            "admin/otp_verify.html",
            self._context(request, title="输入动态口令", error=error, demo_code=demo_code),
            status=400 if error else 200,
        )

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def otp_enrol_view(self, request: HttpRequest) -> HttpResponse:
        """First login of a staff member without an authenticator: bind one, then in."""
        user = request.user
        if not self._password_only(request) or isinstance(user, AnonymousUser):
            return HttpResponseRedirect(reverse("admin:login", current_app=self.name))
        if totp_device_of(user) is not None:
            return self._to_second_factor(request)
        if self._locked(request):
            logout(request)
            return axes_lockout_response(request)
        error = ""
        device = None
        if request.method == "POST":
            pending_id = request.session.get(PENDING_DEVICE_KEY)
            device = TOTPDevice.objects.filter(user=request.user, confirmed=False, pk=pending_id or 0).first()
            if device is None:
                error = "二维码已失效，请用新的二维码重新绑定"
            else:
                try:
                    device = totp_enrol_confirm(user=user, code=request.POST.get("otp_token", ""), device_id=device.pk)
                except DomainError:
                    error = "动态口令不正确，请确认 App 已扫描下方二维码，并输入当前显示的 6 位数字"
                    self._failed(request)
                    if getattr(request, "axes_locked_out", False):
                        return axes_lockout_response(request)
                else:
                    log.warning("staff user %s enrolled a TOTP device (id %s)", request.user.get_username(), device.pk)
                    return self._admit(request, device)
        if device is None:
            device = totp_enrol_start(user=user)
            device.name = f"{request.user.get_username()} 管理后台"
            device.save(update_fields=["name"])
            request.session[PENDING_DEVICE_KEY] = device.pk
        secret = base64.b32encode(device.bin_key).decode().rstrip("=")
        return render(
            request,
            "admin/otp_enrol.html",
            self._context(
                request,
                title="绑定身份验证器",
                error=error,
                qr_svg=totp_qr_svg(device),
                secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            ),
            status=400 if error else 200,
        )
