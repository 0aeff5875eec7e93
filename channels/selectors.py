"""Reads for the operations page and monitoring: per-channel volume, success, latency, breaker, alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from .health import BreakerView, breaker_views, window_stats
from .models import Channel, ChannelAlert, ChannelOutcome, ChannelQuotaUsage


@dataclass
class ChannelOps:
    channel: Channel
    breaker: BreakerView
    calls: int = 0
    submits: int = 0
    failures: int = 0  # channel-side
    success_rate: float | None = None
    window_success_rate: float | None = None
    avg_latency_ms: float | None = None
    p95_latency_ms: int | None = None
    error_classes: dict[str, int] = field(default_factory=dict)
    hours: list[dict[str, Any]] = field(default_factory=list)  # 24 buckets: label, calls, failures
    quota_used: int = 0
    quota_count: int = 0


def channel_ops_summary(*, now: datetime | None = None, hours: int = 24) -> list[ChannelOps]:
    now = now or timezone.now()
    start = now - timedelta(hours=hours)
    channels = list(Channel.objects.order_by("priority", "code"))
    codes = [c.code for c in channels]
    breakers = breaker_views(codes=codes, now=now)
    window = window_stats(codes=codes, now=now)
    rows = ChannelOutcome.objects.filter(at__gte=start, at__lte=now)
    totals: dict[str, dict[str, Any]] = {
        r["channel_code"]: dict(r)
        for r in rows.values("channel_code").annotate(
            calls=Count("pk"),
            submits=Count("pk", filter=Q(operation="submit")),
            failures=Count("pk", filter=Q(counts_against_channel=True)),
            latency=Avg("latency_ms"),
        )
    }
    classes: dict[str, dict[str, int]] = {}
    for c in rows.exclude(error_class="").values("channel_code", "error_class").annotate(n=Count("pk")):
        classes.setdefault(c["channel_code"], {})[c["error_class"]] = c["n"]
    buckets: dict[tuple[str, str], dict[str, int]] = {}
    for r in (
        rows.annotate(hour=TruncHour("at"))
        .values("channel_code", "hour")
        .annotate(calls=Count("pk"), failures=Count("pk", filter=Q(counts_against_channel=True)))
    ):
        key = (r["channel_code"], timezone.localtime(r["hour"]).strftime("%m-%d %H"))
        buckets[key] = {"calls": r["calls"], "failures": r["failures"]}
    first_hour = timezone.localtime(now).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    labels = [(first_hour + timedelta(hours=i)).strftime("%m-%d %H") for i in range(hours)]
    usage = {u.channel_id: u for u in ChannelQuotaUsage.objects.filter(day=timezone.localdate(now))}
    summary = []
    for ch in channels:
        t = totals.get(ch.code, {})
        latencies: list[int] = sorted(
            ms
            for ms in rows.filter(channel_code=ch.code).values_list("latency_ms", flat=True)[:20000]
            if ms is not None
        )
        calls = t.get("calls", 0)
        w = window.get(ch.code)
        u = usage.get(ch.pk)
        summary.append(
            ChannelOps(
                channel=ch,
                breaker=breakers[ch.code],
                calls=calls,
                submits=t.get("submits", 0),
                failures=t.get("failures", 0),
                success_rate=(1 - t.get("failures", 0) / calls) if calls else None,
                window_success_rate=w.success_rate if w else None,
                avg_latency_ms=round(t["latency"], 1) if t.get("latency") is not None else None,
                p95_latency_ms=latencies[int(len(latencies) * 0.95) - 1 if len(latencies) > 1 else 0]
                if latencies
                else None,
                error_classes=classes.get(ch.code, {}),
                hours=[{"label": lb, **buckets.get((ch.code, lb), {"calls": 0, "failures": 0})} for lb in labels],
                quota_used=u.amount if u else 0,
                quota_count=u.count if u else 0,
            )
        )
    return summary


def channel_alerts_recent(*, limit: int = 30) -> list[ChannelAlert]:
    return list(ChannelAlert.objects.all()[:limit])


def channel_alerts_open_count() -> int:
    return ChannelAlert.objects.filter(acknowledged_at__isnull=True).count()
