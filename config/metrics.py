"""Prometheus metrics at GET /metrics.

Two kinds of series:
- measured in this process: API latency (``ApiMetricsMiddleware``, /api/ only);
- computed at scrape time from the database and the broker (so they are right whichever web or worker process
  did the work): withdrawals per non-final state, stuck and unknown ones, payouts by channel and outcome, channel
  calls and success rate in the health window, breaker state and how often it opened, open alerts, queue depth.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
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
BREAKER_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}


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


class PlatformCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        for part in (self._withdrawals, self._channels, self._queue):
            try:
                yield from part()
            except Exception:  # one broken source must not hide the rest
                log.exception("metrics: %s failed", part.__name__)

    def _withdrawals(self) -> Iterator[Metric]:
        from withdrawals.models import FINAL_STATES, Status, Withdrawal

        now = timezone.now()
        in_state = GaugeMetricFamily("withdrawals_in_state", "Withdrawals per non-final state", labels=["status"])
        stuck = GaugeMetricFamily("withdrawals_stuck", "Withdrawals flagged as stuck, per state", labels=["status"])
        counts = dict(Withdrawal.objects.exclude(status__in=FINAL_STATES).values_list("status").annotate(n=Count("pk")))
        flagged = dict(
            Withdrawal.objects.exclude(status__in=FINAL_STATES)
            .filter(stuck_flagged_at__isnull=False)
            .values_list("status")
            .annotate(n=Count("pk"))
        )
        for status in Status:
            if status in FINAL_STATES:
                continue
            in_state.add_metric([status.value], counts.get(status.value, 0))
            stuck.add_metric([status.value], flagged.get(status.value, 0))
        yield in_state
        yield stuck
        unknown = Withdrawal.objects.filter(status=Status.OUTCOME_UNKNOWN).aggregate(
            n=Count("pk"), oldest=Min("state_changed_at")
        )
        yield GaugeMetricFamily("withdrawals_outcome_unknown", "Payouts whose outcome is unknown", value=unknown["n"])
        age = (now - unknown["oldest"]).total_seconds() if unknown["oldest"] else 0
        yield GaugeMetricFamily(
            "withdrawals_outcome_unknown_oldest_seconds", "Age of the oldest unknown outcome", value=age
        )
        payouts = GaugeMetricFamily("payouts", "Settled payouts by channel and outcome", labels=["channel", "outcome"])
        for row in (
            Withdrawal.objects.filter(status__in=[Status.PAID, Status.FAILED, Status.REVERSED])
            .exclude(channel_code="")
            .values("channel_code", "status")
            .annotate(n=Count("pk"))
            .order_by("channel_code", "status")
        ):
            payouts.add_metric([row["channel_code"], row["status"]], row["n"])
        yield payouts

    def _channels(self) -> Iterator[Metric]:
        from channels.health import breaker_views, window_stats
        from channels.models import Channel, ChannelAlert, ChannelBreaker, ChannelOutcome

        now = timezone.now()
        codes = list(Channel.objects.order_by("code").values_list("code", flat=True))
        calls = GaugeMetricFamily(
            "channel_calls_24h",
            "Channel calls in the last 24 h by operation and result",
            labels=["channel", "operation", "result"],
        )
        for row in (
            ChannelOutcome.objects.filter(at__gte=now - timedelta(hours=24))
            .values("channel_code", "operation", "kind")
            .annotate(n=Count("pk"))
            .order_by("channel_code")
        ):
            calls.add_metric([row["channel_code"], row["operation"], row["kind"]], row["n"])
        yield calls
        stats = window_stats(codes=codes, now=now)
        rate = GaugeMetricFamily(
            "channel_success_rate",
            "Share of calls without a channel-side failure, in the health window (absent: no calls)",
            labels=["channel"],
        )
        latency = GaugeMetricFamily(
            "channel_latency_avg_ms", "Average call latency in the health window", labels=["channel"]
        )
        for code in codes:
            s = stats.get(code)
            if s and s.success_rate is not None:
                rate.add_metric([code], s.success_rate)
            if s and s.avg_latency_ms is not None:
                latency.add_metric([code], s.avg_latency_ms)
        yield rate
        yield latency
        state = GaugeMetricFamily(
            "channel_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open", labels=["channel"]
        )
        for code, view in breaker_views(codes=codes, now=now).items():
            state.add_metric([code], BREAKER_STATE_VALUE.get(view.state, 0))
        yield state
        opened = CounterMetricFamily("channel_breaker_opened", "Times a channel's breaker opened", labels=["channel"])
        found = dict(ChannelBreaker.objects.values_list("channel__code", "opened_count"))
        for code in codes:
            opened.add_metric([code], found.get(code, 0))
        yield opened
        alerts = GaugeMetricFamily("channel_alerts_open", "Unacknowledged operations alerts", labels=["kind"])
        open_alerts = dict(
            ChannelAlert.objects.filter(acknowledged_at__isnull=True).values_list("kind").annotate(n=Count("pk"))
        )
        for kind in ChannelAlert.Kind:
            alerts.add_metric([kind.value], open_alerts.get(kind.value, 0))
        yield alerts

    def _queue(self) -> Iterator[Metric]:
        url = settings.CELERY_BROKER_URL
        if not url.startswith(("redis://", "rediss://")):
            return
        import redis

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
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == str(v) for k, v in (labels or {}).items()):
                return float(sample.value)
    return None
