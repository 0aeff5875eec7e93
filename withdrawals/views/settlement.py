"""The merchant's automatic settlement rule: see it, set or edit it, pause and resume it."""

from __future__ import annotations

from datetime import time

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from config.errors import DomainError
from withdrawals.forms import parse_yuan
from withdrawals.models import SettlementRule, SettlementRun, Speed
from withdrawals.settlement import RuleInput, settlement_rule_save, settlement_rule_set_enabled

from .common import merchant_required, request_merchant

WEEKDAYS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"]


def describe(rule: SettlementRule) -> str:
    """The rule in plain words, as the merchant reads it."""
    keep = f"，保留 ¥{rule.keep / 100:,.2f}" if rule.keep else ""
    to = f"提现到默认收款账户（{Speed(rule.speed).label}）"
    if rule.schedule == SettlementRule.Schedule.THRESHOLD:
        return f"可提现余额超过 ¥{rule.threshold / 100:,.2f} 时（每小时检查一次），自动{to}{keep}"
    when = f"{rule.run_at:%H:%M}"
    if rule.schedule == SettlementRule.Schedule.WEEKLY:
        return f"每{WEEKDAYS[rule.weekday]} {when}（遇节假日顺延至当周下一个工作日），自动{to}{keep}"
    return f"每个工作日 {when}（节假日不结算），把可提现余额自动{to}{keep}"


def _parse(request: HttpRequest) -> RuleInput:
    errors: dict[str, str] = {}
    schedule = request.POST.get("schedule", "")
    try:
        hours, minutes = (int(x) for x in request.POST.get("run_at", "10:00").split(":")[:2])
        run_at = time(hours, minutes)
    except ValueError:
        errors["run_at"] = "时间格式应为 HH:MM"
        run_at = time(10, 0)
    try:
        weekday = int(request.POST.get("weekday", "0"))
    except ValueError:
        weekday = -1
    amounts = {}
    for field in ("threshold", "keep"):
        raw = request.POST.get(field, "").strip()
        try:
            amounts[field] = parse_yuan(raw) if raw else 0
        except ValidationError as exc:
            errors[field] = exc.messages[0]
            amounts[field] = 0
    if errors:
        raise DomainError("invalid_request", details=errors)
    return RuleInput(
        schedule=schedule,
        run_at=run_at,
        weekday=weekday,
        threshold=amounts["threshold"],
        keep=amounts["keep"],
        speed=request.POST.get("speed", Speed.STANDARD),
    )


@merchant_required
@require_http_methods(["GET", "POST"])
def settlement_page(request: HttpRequest) -> HttpResponse:
    merchant = request_merchant(request)
    if request.method == "POST":
        try:
            settlement_rule_save(merchant_id=merchant.pk, data=_parse(request))
        except DomainError as exc:
            detail = "；".join(f"{v}" for v in exc.details.values()) if exc.code == "invalid_request" else ""
            messages.error(request, exc.message + (f"：{detail}" if detail else ""))
        else:
            messages.success(request, "自动结算规则已保存")
        return redirect("merchant:settlement")
    rule = SettlementRule.objects.filter(merchant=merchant).first()
    runs = list(SettlementRun.objects.filter(rule=rule).select_related("withdrawal")[:20]) if rule else []
    return render(
        request,
        "merchant/settlement.html",
        {
            "rule": rule,
            "summary": describe(rule) if rule else "",
            "runs": runs,
            "schedules": SettlementRule.Schedule.choices,
            "weekdays": list(enumerate(WEEKDAYS)),
            "speeds": Speed.choices,
            "nav": "settlement",
        },
    )


@merchant_required
@require_POST
def settlement_toggle(request: HttpRequest) -> HttpResponse:
    enable = request.POST.get("enabled") == "1"
    try:
        settlement_rule_set_enabled(merchant_id=request_merchant(request).pk, enabled=enable)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "自动结算已恢复" if enable else "自动结算已暂停")
    return redirect("merchant:settlement")
