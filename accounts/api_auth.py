"""Partner API authentication: ``Authorization: Bearer sk_<prefix>_<secret>``.

Failed authentications are counted like failed logins (django-axes: per client IP and per key prefix) and, past
``LOGIN_FAILURE_LIMIT``, refused for ``LOGIN_LOCKOUT_MINUTES`` with 429 ``login_locked`` — even with a valid key.
Fixed demo keys (prefix ``demo…``) work only in demo mode."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, NoReturn

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from .models import ApiKey, Merchant

if TYPE_CHECKING:  # DRF loads this class while rest_framework.views is still importing
    from rest_framework.request import Request
    from rest_framework.views import APIView

DEMO_KEY_PREFIX = "demo"


class ApiLockedOut(exceptions.Throttled):
    """Too many failed authentications from this IP or for this key: 429 ``login_locked``."""

    default_code = "login_locked"


class ApiClient:
    """The authenticated principal of an API request: a merchant acting through one key."""

    is_authenticated = True

    def __init__(self, merchant: Merchant, key: ApiKey) -> None:
        self.merchant = merchant
        self.key = key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiClient, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        raw = raw.strip()
        parts = raw.split("_", 2)
        well_formed = scheme == self.keyword and len(parts) == 3 and parts[0] == "sk" and bool(parts[1])
        # The "account" a lockout counts against: the key prefix (the IP is always counted too).
        credentials = {"username": f"api-key:{parts[1][:40]}" if well_formed else "api-key:malformed"}
        django_request = request._request
        if not AxesProxyHandler.is_allowed(django_request, credentials):
            raise ApiLockedOut()
        if scheme != self.keyword or not raw:
            self._failed(django_request, credentials, "use Authorization: Bearer <api key>")
        if not well_formed:
            self._failed(django_request, credentials, "malformed API key")
        if parts[1].startswith(DEMO_KEY_PREFIX) and not settings.DEMO_MODE:
            self._failed(django_request, credentials, "invalid or revoked API key")  # demo keys: demo mode only
        key = ApiKey.objects.select_related("merchant").filter(prefix=parts[1], revoked_at__isnull=True).first()
        if key is None or not hmac.compare_digest(key.key_hash, ApiKey.hash_secret(raw)):
            self._failed(django_request, credentials, "invalid or revoked API key")
        assert key is not None
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
        return ApiClient(key.merchant, key), key

    def _failed(self, django_request: HttpRequest, credentials: dict, reason: str) -> NoReturn:
        user_login_failed.send(sender=type(self), credentials=credentials, request=django_request)
        if getattr(django_request, "axes_locked_out", False):
            raise ApiLockedOut()
        raise exceptions.AuthenticationFailed(reason)

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class IsMerchantApiClient(permissions.BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return isinstance(request.user, ApiClient)


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Requests per API key (per client IP before authentication). The rate is read from settings at request
    time (``API_RATE_LIMIT``, e.g. "600/min") so operations can change it without a code change."""

    scope = "api_key"

    def get_rate(self) -> str | None:
        return settings.API_RATE_LIMIT or None

    def allow_request(self, request: Request, view: APIView) -> bool:
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: APIView) -> str:
        user = request.user
        ident = f"key:{user.key.prefix}" if isinstance(user, ApiClient) else f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
