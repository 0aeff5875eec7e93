"""What /metrics and /healthz/ready show about the payment channels (registered with ``config.metrics`` and
``config.health`` in ``ChannelsConfig.ready()``)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from config.health import CHECK_TIMEOUT_SECONDS

from .health import breaker_views, window_stats
from .models import Channel, ChannelAlert, ChannelBreaker, ChannelOutcome

BREAKER_STATE_VALUE = {"closed": 0, "half_open": 1, "open": 2}
GATEWAY_ADAPTERS = ("bankdirect", "alipay", "wechat")


def channel_metrics() -> Iterator[Metric]:
    """Channel calls and success rate in the health window, latency, breaker state, alerts."""
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


def gateway_ready_check() -> dict[str, Any]:
    if not settings.HEALTH_CHECK_GATEWAY:
        return {"skipped": "HEALTH_CHECK_GATEWAY is off"}
    if not Channel.objects.filter(enabled=True, adapter__in=GATEWAY_ADAPTERS).exists():
        return {"skipped": "no enabled gateway channel"}
    url = settings.SANDBOX_GATEWAY_URL.rstrip("/") + "/_control/health"
    with urllib.request.urlopen(url, timeout=CHECK_TIMEOUT_SECONDS) as response:
        if response.status != 200:
            raise RuntimeError(f"gateway answered {response.status}")
    return {"url": settings.SANDBOX_GATEWAY_URL}
