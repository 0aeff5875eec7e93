"""Request-level security: bad bytes refused before anything parses them, idle sessions ended, and the login
lockout (django-axes) answered in words a person or a partner's program understands."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render

from config.catalogue import error_body

log = logging.getLogger(__name__)

IDLE_SESSION_KEY = "_last_activity"
# Requests a page makes by itself (progress polling) are not the user doing something.
PASSIVE_URL_NAMES = {"merchant:withdrawal_progress"}


def api_error(code: str, status: int, details: dict[str, Any] | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, details=details or {}), status=status)


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


# --- NUL bytes ------------------------------------------------------------------------------------------
FORM_CONTENT_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


class RejectNulBytesMiddleware:
    """A NUL byte in the query string, a header value or a form field is never meaningful and PostgreSQL refuses it
    in text: answer 400 (the API's error envelope under /api/) instead of letting it reach a query and a 500.
    Form bodies are checked here because some views read a field themselves (the retry button's idempotency key,
    the reviewer's note); JSON bodies are checked by the API's parser (``withdrawals.api.parsers``)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = self._nul_in(request)
        if where:
            if is_api(request):
                return api_error("invalid_request", 400, {where: "contains a NUL byte"})
            return HttpResponseBadRequest("请求包含非法字符 (NUL)", content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    @staticmethod
    def _nul_in(request: HttpRequest) -> str:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in query or b"\x00" in unquote_to_bytes(query):
            return "query"
        for key, value in request.META.items():
            if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
                return "header"
        if request.method == "POST" and request.content_type in FORM_CONTENT_TYPES:
            try:
                fields = list(request.POST.lists())
            except (MultiPartParserError, SuspiciousOperation, OSError):  # a malformed or too big body: as before
                return ""
            if any("\x00" in key or any("\x00" in v for v in values) for key, values in fields):
                return "form"
        return ""


# --- idle sessions --------------------------------------------------------------------------------------
class SessionIdleTimeoutMiddleware:
    """Logs a signed-in person out after a quiet spell: ``SESSION_IDLE_STAFF_SECONDS`` (15 min) for staff,
    ``SESSION_IDLE_MERCHANT_SECONDS`` (30 min) for merchants. Polling a progress page does not count as activity;
    the last activity is written at most every ``SESSION_IDLE_RESOLUTION_SECONDS`` to spare the session store."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not hasattr(request, "session"):
            return None
        limit = settings.SESSION_IDLE_STAFF_SECONDS if user.is_staff else settings.SESSION_IDLE_MERCHANT_SECONDS
        now = time.time()
        last = request.session.get(IDLE_SESSION_KEY)
        if isinstance(last, int | float) and now - last > limit:
            was_staff = user.is_staff
            logout(request)
            messages.info(request, f"您已超过 {limit // 60} 分钟未操作，为了账户安全已自动退出，请重新登录")
            login_url = "/admin/login/" if was_staff or request.path.startswith("/admin/") else settings.LOGIN_URL
            if request.headers.get("Accept", "").startswith("application/json") or _passive(request):
                return JsonResponse({"error": "session_expired", "login": login_url}, status=401)
            return redirect_to_login(request.get_full_path(), login_url)
        if not _passive(request) and (
            not isinstance(last, int | float) or now - last >= settings.SESSION_IDLE_RESOLUTION_SECONDS
        ):
            request.session[IDLE_SESSION_KEY] = int(now)
        return None


def _passive(request: HttpRequest) -> bool:
    match = getattr(request, "resolver_match", None)
    return match is not None and match.view_name in PASSIVE_URL_NAMES


# --- login lockout (django-axes) ------------------------------------------------------------------------
class LockoutBackend(AxesStandaloneBackend):
    """Axes' lockout check for every authentication made for an HTTP request. ``authenticate()`` without a
    request (a management command, the test client's ``login``) is not a login through a door that can be
    hammered, so it passes through to the next backend instead of failing."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> AbstractBaseUser | None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_minutes(request: HttpRequest | None = None) -> int:
    cool_off = get_cool_off(request)
    return int(cool_off.total_seconds() // 60) if cool_off else 0


def axes_lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """What a locked-out client sees (``AXES_LOCKOUT_CALLABLE``): the API's error envelope with 429 and
    Retry-After, or a page that says what happened, for how long, and how to get unlocked."""
    minutes = lockout_minutes(request)
    log.warning("login locked out: path=%s ip=%s", request.path, request.META.get("REMOTE_ADDR", ""))
    response: HttpResponse
    if is_api(request):
        response = api_error("login_locked", 429, {"retry_after": minutes * 60})
    else:
        template = "admin/locked_out.html" if request.path.startswith("/admin/") else "merchant/locked_out.html"
        response = render(request, template, {"minutes": minutes, "limit": settings.AXES_FAILURE_LIMIT}, status=429)
    response["Retry-After"] = str(minutes * 60)
    return response
