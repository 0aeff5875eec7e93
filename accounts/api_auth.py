"""Partner API authentication: ``Authorization: Bearer sk_<prefix>_<secret>``."""

from __future__ import annotations

import hmac

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from .models import ApiKey, Merchant


class ApiClient:
    """The authenticated principal of an API request: a merchant acting through one key."""

    is_authenticated = True

    def __init__(self, merchant: Merchant, key: ApiKey) -> None:
        self.merchant = merchant
        self.key = key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme != self.keyword or not raw.strip():
            raise exceptions.AuthenticationFailed("use Authorization: Bearer <api key>")
        raw = raw.strip()
        parts = raw.split("_", 2)
        if len(parts) != 3 or parts[0] != "sk":
            raise exceptions.AuthenticationFailed("malformed API key")
        key = ApiKey.objects.select_related("merchant").filter(prefix=parts[1], revoked_at__isnull=True).first()
        if key is None or not hmac.compare_digest(key.key_hash, ApiKey.hash_secret(raw)):
            raise exceptions.AuthenticationFailed("invalid or revoked API key")
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
        return ApiClient(key.merchant, key), key

    def authenticate_header(self, request) -> str:  # type: ignore[no-untyped-def]
        return self.keyword


class IsMerchantApiClient(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        return isinstance(request.user, ApiClient)


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Requests per API key (per client IP before authentication). The rate is read from settings at request
    time (``API_RATE_LIMIT``, e.g. "600/min") so operations can change it without a code change."""

    scope = "api_key"

    def get_rate(self) -> str | None:
        from django.conf import settings

        return settings.API_RATE_LIMIT or None

    def allow_request(self, request, view) -> bool:  # type: ignore[no-untyped-def]
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:  # type: ignore[no-untyped-def]
        user = request.user
        ident = f"key:{user.key.prefix}" if isinstance(user, ApiClient) else f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}
