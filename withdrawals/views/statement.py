"""The merchant's statement (资金流水) with CSV export, and the electronic receipt (电子回单) of a paid withdrawal."""

from __future__ import annotations

import csv
from datetime import date, datetime, time, timedelta

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from config.money import fen_to_yuan
from wallets.models import Transfer
from wallets.selectors import Statement, merchant_statement
from withdrawals.models import Status
from withdrawals.receipts import receipt_pdf

from .common import merchant_required, own_withdrawal, request_merchant

DEFAULT_DAYS = 30
MAX_DAYS = 366
CSV_COLUMNS = [
    "时间 (Asia/Shanghai)",
    "类型",
    "业务参考号",
    "说明",
    "待结算变动",
    "可提现变动",
    "冻结变动",
    "保证金变动",
    "可提现余额",
    "账户总额",
]


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _window(request: HttpRequest) -> tuple[date, date, list[str], str]:
    """The dates asked for (inclusive, local), at most a year, defaulting to the last 30 days; bad input falls back
    to the default with a note instead of an error page."""
    today = timezone.localdate()
    start, end = _day(request.GET.get("from")), _day(request.GET.get("to"))
    note = ""
    if (request.GET.get("from") and start is None) or (request.GET.get("to") and end is None):
        note = "日期格式应为 YYYY-MM-DD，已显示最近 30 天"
        start = end = None
    end = end or today
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        start, end = end, start
    if (end - start).days >= MAX_DAYS:
        start = end - timedelta(days=MAX_DAYS - 1)
        note = "一次最多查询一年，已按结束日期截取"
    kinds = [k for k in request.GET.getlist("kind") if k in Transfer.Kind.values]
    return start, end, kinds, note


def _statement(request: HttpRequest) -> tuple[Statement, date, date, list[str], str]:
    start, end, kinds, note = _window(request)
    since = timezone.make_aware(datetime.combine(start, time.min))
    until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    statement = merchant_statement(merchant_id=request_merchant(request).pk, since=since, until=until, kinds=kinds)
    return statement, start, end, kinds, note


@merchant_required
@require_GET
def statement_page(request: HttpRequest) -> HttpResponse:
    statement, start, end, kinds, note = _statement(request)
    return render(
        request,
        "merchant/statement.html",
        {
            "statement": statement,
            "lines": list(reversed(statement.lines)),  # newest first on the page
            "start": start,
            "end": end,
            "kinds": kinds,
            "kind_choices": Transfer.Kind.choices,
            "note": note,
            "query": request.GET.urlencode(),
            "nav": "statement",
        },
    )


@merchant_required
@require_GET
def statement_csv(request: HttpRequest) -> HttpResponse:
    """The same lines as the page, oldest first, amounts in yuan with two decimals (UTF-8 with BOM for Excel)."""
    statement, start, end, _kinds, _note = _statement(request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="statement-{start:%Y%m%d}-{end:%Y%m%d}.csv"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for line in statement.lines:
        writer.writerow(
            [
                timezone.localtime(line.at).strftime("%Y-%m-%d %H:%M:%S"),
                line.kind_label,
                line.reference,
                line.description,
                *(fen_to_yuan(v, grouping=False) for v in (line.pending, line.available, line.held, line.reserve)),
                fen_to_yuan(line.available_after, grouping=False),
                fen_to_yuan(line.total_after, grouping=False),
            ]
        )
    return response


@merchant_required
@require_GET
def withdrawal_receipt(request: HttpRequest, pk: int) -> HttpResponse:
    """The electronic receipt (电子回单) of a paid withdrawal, as a PDF; 404 for any other state or merchant."""
    w = own_withdrawal(request, pk)
    if w.status not in (Status.PAID, Status.REVERSED) or w.paid_at is None:
        raise Http404
    response = HttpResponse(receipt_pdf(w), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="receipt-{w.order_no}.pdf"'
    return response
