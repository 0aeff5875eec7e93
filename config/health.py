"""Health endpoints for the load balancer / orchestrator.

GET /healthz/live  — the process answers (no dependencies checked): 200.
GET /healthz/ready — can we do work: database, broker and (when an enabled channel uses it) the sandbox
                     gateway. 200 when all pass, 503 otherwise; JSON says which check failed and why.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

CHECK_TIMEOUT_SECONDS = 2.0
GATEWAY_ADAPTERS = ("bankdirect", "alipay", "wechat")


def check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"engine": connection.vendor}


def check_broker() -> dict[str, Any]:
    url = settings.CELERY_BROKER_URL
    scheme = url.split("://", 1)[0]
    if scheme in ("redis", "rediss"):
        import redis

        client = redis.Redis.from_url(
            url, socket_timeout=CHECK_TIMEOUT_SECONDS, socket_connect_timeout=CHECK_TIMEOUT_SECONDS
        )
        client.ping()
        return {"broker": scheme}
    if scheme == "filesystem":
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])  # type: ignore[arg-type]
        if not folder.is_dir():
            raise RuntimeError(f"broker folder {folder} is missing")
        return {"broker": scheme}
    return {"broker": scheme}


def check_gateway() -> dict[str, Any]:
    from channels.models import Channel

    if not settings.HEALTH_CHECK_GATEWAY:
        return {"skipped": "HEALTH_CHECK_GATEWAY is off"}
    if not Channel.objects.filter(enabled=True, adapter__in=GATEWAY_ADAPTERS).exists():
        return {"skipped": "no enabled gateway channel"}
    url = settings.SANDBOX_GATEWAY_URL.rstrip("/") + "/_control/health"
    with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT_SECONDS) as response:
        if response.status != 200:
            raise RuntimeError(f"gateway answered {response.status}")
    return {"url": settings.SANDBOX_GATEWAY_URL}


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": check_database,
    "broker": check_broker,
    "gateway": check_gateway,
}


def run_checks() -> tuple[bool, dict[str, Any]]:
    results: dict[str, Any] = {}
    healthy = True
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            detail = check()
            results[name] = {"ok": True, **detail}
        except Exception as exc:  # any failure of a dependency is "not ready", reported, never a 500
            healthy = False
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    return healthy, results


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    healthy, checks = run_checks()
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )
