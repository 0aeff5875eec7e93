"""The operations page in the admin (/admin/ops/): the last 24 h per channel as charts, breakers, alerts."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from .health import channel_alert_acknowledge
from .selectors import channel_alerts_open_count, channel_alerts_recent, channel_ops_summary

CHART_HEIGHT = 60
BAR_WIDTH = 10


def _bars(hours: list[dict[str, Any]], peak: int) -> list[dict[str, Any]]:
    bars = []
    for i, h in enumerate(hours):
        total = h["calls"] * CHART_HEIGHT / peak if peak else 0
        failed = h["failures"] * CHART_HEIGHT / peak if peak else 0
        bars.append(
            {
                "x": i * (BAR_WIDTH + 2),
                "ok_y": round(CHART_HEIGHT - total, 1),
                "ok_h": round(total - failed, 1),
                "fail_y": round(CHART_HEIGHT - failed, 1),
                "fail_h": round(failed, 1),
                "title": f"{h['label']}:00  {h['calls']} calls, {h['failures']} channel-side failures",
            }
        )
    return bars


def ops_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm("payment_channels.view_channel"):
        raise PermissionDenied
    if request.method == "POST":
        if not request.user.has_perm("payment_channels.change_channel"):
            raise PermissionDenied
        alert_id = request.POST.get("alert_id", "")
        if alert_id.isdigit():
            channel_alert_acknowledge(alert_id=int(alert_id), by=request.user.get_username())
            messages.success(request, "告警已确认")
        return HttpResponseRedirect(reverse("admin_ops"))
    summary = channel_ops_summary()
    peak = max((h["calls"] for s in summary for h in s.hours), default=0)
    rows = [{"ops": s, "bars": _bars(s.hours, peak)} for s in summary]
    alerts = channel_alerts_recent()
    context = {
        **admin.site.each_context(request),
        "title": "运营看板 · 通道健康（最近 24 小时）",
        "rows": rows,
        "alerts": alerts,
        "open_alerts": [a for a in alerts if a.acknowledged_at is None],
        "open_alert_count": channel_alerts_open_count(),
        "chart_width": 24 * (BAR_WIDTH + 2),
        "chart_height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH,
        "peak": peak,
        "can_ack": request.user.has_perm("payment_channels.change_channel"),
    }
    return TemplateResponse(request, "admin/ops.html", context)
