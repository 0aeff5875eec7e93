"""The report rules, on plain values: the orchestrator (operations.compliance_jobs) describes transactions as
``Transaction`` values and which merchants are linked; these functions say which reports they call for.
Compliance never reads withdrawals itself.

- large value: one transaction at or above LARGE_VALUE_THRESHOLD_FEN (inclusive);
- daily aggregate: one merchant's transactions of one (Asia/Shanghai) day, two or more, adding up to
  DAILY_AGGREGATE_THRESHOLD_FEN or more: one large-value report for the day;
- structuring: transactions "just under" the threshold (within STRUCTURING_BAND_PERCENT below it) on at least
  STRUCTURING_MIN_DAYS different days, or from two or more linked merchants: one suspicious report citing every
  transaction as evidence. A transaction already cited by a structuring report is not cited again, so a pattern
  is reported once however often the scan runs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

LARGE_VALUE = "large_value"
SUSPICIOUS = "suspicious"


@dataclass(frozen=True)
class Transaction:
    """A transaction as the orchestrator describes it (a paid or attempted withdrawal)."""

    ref: str  # "withdrawal:42"
    merchant_id: int
    merchant_name: str
    amount: int  # fen
    occurred_at: datetime
    currency: str = "CNY"
    holder_name: str = ""
    id_number: str = ""  # full; masked when a report is drafted
    account_number: str = ""  # the counterparty card, full; masked when a report is drafted
    channel: str = ""


@dataclass(frozen=True)
class Finding:
    """A report a rule calls for: its kind, subject, the transaction whose party it names, amount and grounds."""

    kind: str
    subject_ref: str
    subject: Transaction
    amount: int
    grounds: list[Any] = field(default_factory=list)


def _evidence(t: Transaction) -> dict[str, Any]:
    return {
        "ref": t.ref,
        "merchant_id": t.merchant_id,
        "merchant_name": t.merchant_name,
        "amount": t.amount,
        "at": timezone.localtime(t.occurred_at).isoformat(timespec="seconds"),
    }


def is_large_value(amount: int) -> bool:
    """At or above the large-value threshold (inclusive: 50,000.00 yuan is reported, 49,999.99 is not)."""
    return amount >= settings.LARGE_VALUE_THRESHOLD_FEN


def large_value_findings(transactions: Iterable[Transaction]) -> list[Finding]:
    threshold = settings.LARGE_VALUE_THRESHOLD_FEN
    return [
        Finding(LARGE_VALUE, t.ref, t, t.amount, [{"rule": "large_value", "amount": t.amount, "threshold": threshold}])
        for t in transactions
        if is_large_value(t.amount)
    ]


def daily_aggregate_findings(transactions: Iterable[Transaction]) -> list[Finding]:
    """One report per merchant and day whose two or more transactions add up to the daily threshold. The caller
    passes complete days only (a day still running would be reported before its total is known)."""
    threshold = settings.DAILY_AGGREGATE_THRESHOLD_FEN
    days: dict[tuple[int, date], list[Transaction]] = defaultdict(list)
    for t in transactions:
        days[(t.merchant_id, timezone.localdate(t.occurred_at))].append(t)
    findings = []
    for (merchant_id, day), items in sorted(days.items()):
        total = sum(t.amount for t in items)
        if len(items) < 2 or total < threshold:
            continue
        items.sort(key=lambda t: (t.occurred_at, t.ref))
        ground = {
            "rule": "daily_aggregate",
            "day": day.isoformat(),
            "total": total,
            "threshold": threshold,
            "transactions": [_evidence(t) for t in items],
        }
        findings.append(Finding(LARGE_VALUE, f"daily:{merchant_id}:{day.isoformat()}", items[-1], total, [ground]))
    return findings


def structuring_band() -> tuple[int, int]:
    """[low, high): amounts counted as just under the large-value threshold."""
    high = settings.LARGE_VALUE_THRESHOLD_FEN
    return high - high * settings.STRUCTURING_BAND_PERCENT // 100, high


def structuring_findings(
    transactions: Iterable[Transaction],
    *,
    links: Mapping[int, Iterable[int]] | None = None,
    already_cited: Iterable[str] = (),
) -> list[Finding]:
    """Just-under transactions grouped by linked merchants (``links``: merchant id → linked merchant ids, either
    direction is enough); a group on STRUCTURING_MIN_DAYS days or more, or of two merchants or more, is one
    suspicious report. The caller passes the window's transactions (STRUCTURING_WINDOW_DAYS)."""
    low, high = structuring_band()
    cited = set(already_cited)
    under = [t for t in transactions if low <= t.amount < high and t.ref not in cited]
    if not under:
        return []
    # Union-find over the merchants that have just-under transactions.
    parent: dict[int, int] = {t.merchant_id: t.merchant_id for t in under}

    def root(m: int) -> int:
        while parent[m] != m:
            parent[m] = parent[parent[m]]
            m = parent[m]
        return m

    for merchant_id, others in (links or {}).items():
        for other in others:
            if merchant_id in parent and other in parent:
                a, b = root(merchant_id), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups: dict[int, list[Transaction]] = defaultdict(list)
    for t in under:
        groups[root(t.merchant_id)].append(t)
    findings = []
    for items in groups.values():
        items.sort(key=lambda t: (t.occurred_at, t.ref))
        days = sorted({timezone.localdate(t.occurred_at) for t in items})
        merchants = sorted({(t.merchant_id, t.merchant_name) for t in items})
        patterns = []
        if len(days) >= settings.STRUCTURING_MIN_DAYS:
            patterns.append("days")
        if len(merchants) >= 2:
            patterns.append("linked")
        if not patterns:
            continue
        total = sum(t.amount for t in items)
        ground = {
            "rule": "structuring",
            "patterns": patterns,
            "band_low": low,
            "threshold": high,
            "window_days": settings.STRUCTURING_WINDOW_DAYS,
            "days": [d.isoformat() for d in days],
            "merchants": [{"id": m, "name": name} for m, name in merchants],
            "total": total,
            "transactions": [_evidence(t) for t in items],
        }
        first = items[0]
        findings.append(Finding(SUSPICIOUS, f"structuring:{first.ref}", first, total, [ground]))
    return findings


def cited_refs(grounds: Iterable[Any]) -> set[str]:
    """The transactions a report's grounds cite as evidence."""
    refs: set[str] = set()
    for ground in grounds:
        if isinstance(ground, dict):
            refs.update(str(t.get("ref")) for t in ground.get("transactions") or [] if isinstance(t, dict))
    return refs
