"""Partner API authentication: ``Authorization: Bearer sk_<prefix>_<secret>``.

Failed authentications are counted like failed logins (django-axes: per client IP and per key prefix) and, past
``LOGIN_FAILURE_LIMIT``, refused for ``LOGIN_LOCKOUT_MINUTES`` with 429 ``login_locked`` — even with a valid key.
Fixed demo keys (prefix ``demo…``) work only in demo mode.

**Request signing** (a key with ``signing_required``): the request also carries ``X-Kamen-Timestamp`` (unix
seconds), ``X-Kamen-Nonce`` (16–64 characters of ``[A-Za-z0-9_-]``, never reused) and ``X-Kamen-Signature:
v1=<hex>``, the HMAC-SHA256 with the key's signing secret of ``string_to_sign`` (method, path with query,
timestamp, nonce, SHA-256 of the body, joined by newlines). Refused with 401 ``signature_required`` (a header is
missing), ``signature_expired`` (the timestamp is more than ``SIGNATURE_WINDOW_SECONDS`` from the server's
clock), ``signature_invalid`` (malformed, or not the HMAC of this request) or ``signature_replayed`` (the nonce was
used by this key within the window: nonces are kept in the cache, Redis in production, for twice the window).
The nonce is recorded only after the signature verified, so nobody without the secret can burn a client's nonces.

**Last use** is written at most once per ``LAST_USE_RESOLUTION_SECONDS`` per key, not on every request."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from typing import TYPE_CHECKING, NoReturn

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling

from config.errors import DomainError

from .models import ApiKey, Merchant

if TYPE_CHECKING:  # DRF loads this class while rest_framework.views is still importing
    from rest_framework.request import Request
    from rest_framework.views import APIView

DEMO_KEY_PREFIX = "demo"
SIGNATURE_WINDOW_SECONDS = 300
TIMESTAMP_HEADER = "X-Kamen-Timestamp"
NONCE_HEADER = "X-Kamen-Nonce"
SIGNATURE_HEADER = "X-Kamen-Signature"
NONCE_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,64}")
SIGNATURE_PATTERN = re.compile(r"v1=([0-9a-f]{64})")
LAST_USE_RESOLUTION_SECONDS = 60


def string_to_sign(*, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """What a signed request's HMAC covers: ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nhex(SHA-256(body))``."""
    return "\n".join([method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()])


def signature_for(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def _nonce_cache_key(prefix: str, nonce: str) -> str:
    return f"api-nonce:{prefix}:{nonce}"


def signature_verify(django_request: HttpRequest, key: ApiKey, *, now: dt.datetime | None = None) -> None:
    """Refuse (DomainError) a request of a signing key whose signature is missing, stale, wrong or replayed."""
    headers = django_request.headers
    timestamp = headers.get(TIMESTAMP_HEADER, "").strip()
    nonce = headers.get(NONCE_HEADER, "").strip()
    signature = headers.get(SIGNATURE_HEADER, "").strip()
    if not (timestamp and nonce and signature):
        missing = [
            h for h, v in ((TIMESTAMP_HEADER, timestamp), (NONCE_HEADER, nonce), (SIGNATURE_HEADER, signature)) if not v
        ]
        raise DomainError("signature_required", details={"missing": missing})
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise DomainError("signature_invalid", details={"reason": f"{TIMESTAMP_HEADER} is unix seconds"})
    server_time = int((now or timezone.now()).timestamp())
    if abs(server_time - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        raise DomainError(
            "signature_expired",
            details={
                "timestamp": int(timestamp),
                "server_time": server_time,
                "window_seconds": SIGNATURE_WINDOW_SECONDS,
            },
        )
    if not NONCE_PATTERN.fullmatch(nonce):
        raise DomainError(
            "signature_invalid", details={"reason": f"{NONCE_HEADER}: 16-64 characters of A-Z a-z 0-9 _ -"}
        )
    given = SIGNATURE_PATTERN.fullmatch(signature)
    if given is None:
        raise DomainError("signature_invalid", details={"reason": f"{SIGNATURE_HEADER}: v1=<64 hex digits>"})
    try:
        body = django_request.body
    except RequestDataTooBig:
        raise DomainError("invalid_request", details={"body": "too large"}) from None
    message = string_to_sign(
        method=django_request.method or "",
        path=django_request.get_full_path(),
        timestamp=timestamp,
        nonce=nonce,
        body=body,
    )
    if not hmac.compare_digest(signature_for(key.signing_secret, message), given.group(1)):
        raise DomainError("signature_invalid", details={"reason": "the signature does not match the request"})
    if not cache.add(_nonce_cache_key(key.prefix, nonce), timestamp, timeout=2 * SIGNATURE_WINDOW_SECONDS):
        raise DomainError("signature_replayed", details={"nonce": nonce})


def last_use_record(key: ApiKey, *, now: dt.datetime | None = None) -> None:
    """Record that the key was used, at most once per LAST_USE_RESOLUTION_SECONDS: no write on most requests (the
    row read to authenticate already says when it was last written), and one conditional UPDATE otherwise."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=LAST_USE_RESOLUTION_SECONDS)
    if key.last_used_at is not None and key.last_used_at > cutoff:
        return
    ApiKey.objects.filter(pk=key.pk).filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=cutoff)).update(
        last_used_at=now
    )


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
        if key.signing_required:
            signature_verify(django_request, key)  # a valid key without its signature is not authenticated
        last_use_record(key)
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
