"""Prometheus metrics at GET /metrics.

Two kinds of series:
- measured in this process: API latency (``ApiMetricsMiddleware``, /api/ only);
- computed at scrape time from the database and the broker (so they are right whichever web or worker process
  did the work): withdrawals per non-final state, stuck and unknown ones, payouts by channel and outcome, channel
  calls and success rate in the health window, breaker state and how often it opened, open alerts, queue depth.
  The broker's queue depth is computed here; the apps register the rest (``withdrawals.monitoring``,
  ``channels.monitoring``) in their ``AppConfig.ready()``.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=False)
API_LATENCY = Histogram(
    "api_request_duration_seconds",
    "Partner API latency",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class ApiMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        API_LATENCY.labels(request.method, route, str(response.status_code)).observe(time.perf_counter() - started)
        return response


MetricsSource = Callable[[], Iterator[Metric]]
_sources: list[MetricsSource] = []


def metrics_source_register(source: MetricsSource) -> None:
    """Series an app computes at scrape time (withdrawals, channels: registered in their ``AppConfig.ready()``)."""
    if source not in _sources:
        _sources.append(source)


class PlatformCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        for part in (*_sources, self._queue):
            try:
                yield from part()
            except Exception:  # one broken source must not hide the rest
                log.exception("metrics: %s failed", part.__name__)

    def _queue(self) -> Iterator[Metric]:
        url = settings.CELERY_BROKER_URL
        if not url.startswith(("redis://", "rediss://")):
            return
        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
        depth = GaugeMetricFamily("celery_queue_depth", "Tasks waiting in the broker queue", labels=["queue"])
        depth.add_metric([queue], client.llen(queue))
        yield depth


REGISTRY.register(PlatformCollector())


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def metric_value(text: str, name: str, labels: dict[str, Any] | None = None) -> float | None:
    """Read one sample from an exposition text (tests, the ops page)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == str(v) for k, v in (labels or {}).items()):
                return float(sample.value)
    return None
