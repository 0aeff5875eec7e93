"""Health endpoints for the load balancer / orchestrator.

GET /healthz/live  — the process answers (no dependencies checked): 200.
GET /healthz/ready — can we do work: database, broker and (when an enabled channel uses it) the sandbox
                     gateway. 200 when all pass, 503 otherwise; JSON says which check failed and why.

The apps above config add their own checks in ``AppConfig.ready()`` (``health_check_register``): the gateway
check is the channels app's (``channels.monitoring.gateway_ready_check``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

CHECK_TIMEOUT_SECONDS = 2.0


def check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"engine": connection.vendor}


def check_broker() -> dict[str, Any]:
    url = settings.CELERY_BROKER_URL
    scheme = url.split("://", 1)[0]
    if scheme in ("redis", "rediss"):
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


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": check_database,
    "broker": check_broker,
}


def health_check_register(name: str, check: Callable[[], dict[str, Any]]) -> None:
    """Another readiness check, run after these (``check()`` returns details or raises)."""
    CHECKS[name] = check


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
