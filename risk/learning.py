"""The learning loop: trace after the fact, feed back into prevention.

A periodic job (``risk.learning_loop`` task, ``manage.py risk_learning_loop``) that

- applies confirmed-fraud feedback: the device, card and IP of each confirmed-fraud withdrawal go on the
  high-risk list with an expiry (source ``fraud_feedback``); the label is already there for retraining;
- labels completed withdrawals as clean once they have been paid for ``clean_after_days`` without a fraud
  report (``settled_clean``, fraud=False: the negatives of the next training run);
- lists IPs and devices that several withdrawing accounts shared in the window, in a report the admin shows,
  and puts those shared by at least ``shared_min`` accounts on the list as expiring ``learning_loop`` entries.
  Such entries only ADD SCORE (rule ``learning_loop_shared_entity``): offices and families share IPs too, so a
  count alone never stops a withdrawal.

Risk does not import withdrawals: the platform registers a source of completed withdrawals
(:func:`risk_completed_source_register`), called with a time window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from .models import LearningLoopRun, RiskDecisionLog, RiskLabel, RiskListEntry
from .services import risk_fraud_lists_apply, risk_label_record, risk_list_add


@dataclass(frozen=True)
class CompletedWithdrawal:
    withdrawal_ref: str
    merchant_ref: str
    paid_at: datetime
    ip: str
    device: str


CompletedSource = Callable[[datetime, datetime], list[CompletedWithdrawal]]
_sources: list[CompletedSource] = []


def risk_completed_source_register(source: CompletedSource) -> None:
    if source not in _sources:
        _sources.append(source)


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def risk_learning_loop_run(
    *,
    now: datetime | None = None,
    window_days: int | None = None,
    clean_after_days: int | None = None,
    shared_min: int | None = None,
    list_days: int | None = None,
) -> LearningLoopRun:
    now = now or timezone.now()
    window = timedelta(days=window_days or _setting("RISK_LEARNING_WINDOW_DAYS", 7))
    clean_after = timedelta(days=clean_after_days or _setting("RISK_CLEAN_AFTER_DAYS", 7))
    shared_min = shared_min or _setting("RISK_SHARED_ENTITY_LIST_MIN", 4)
    list_for = timedelta(days=list_days or _setting("RISK_SHARED_ENTITY_LIST_DAYS", 14))
    since = now - window
    summary: dict[str, Any] = {"window_days": window.days, "shared_min": shared_min}

    with transaction.atomic():
        # 1. Confirmed fraud → list entries (idempotent: an open entry is extended, not duplicated).
        confirmed = list(
            RiskLabel.objects.filter(source=RiskLabel.Source.FRAUD_CONFIRMED, created_at__gte=since).values_list(
                "withdrawal_ref", flat=True
            )
        )
        listed = 0
        for ref in confirmed:
            listed += len(risk_fraud_lists_apply(withdrawal_ref=ref, now=now))
        summary["fraud_confirmed"] = len(confirmed)
        summary["fraud_list_entries"] = listed

        # 2. Paid long enough ago without a fraud report → clean labels.
        completed: list[CompletedWithdrawal] = []
        for source in _sources:
            completed.extend(source(since - clean_after, now - clean_after))
        refs = [c.withdrawal_ref for c in completed]
        fraud_refs = set(
            RiskLabel.objects.filter(withdrawal_ref__in=refs, fraud=True).values_list("withdrawal_ref", flat=True)
        )
        clean = 0
        for c in completed:
            if c.withdrawal_ref not in fraud_refs:
                risk_label_record(
                    withdrawal_ref=c.withdrawal_ref,
                    merchant_ref=c.merchant_ref,
                    fraud=False,
                    source=RiskLabel.Source.SETTLED_CLEAN,
                )
                clean += 1
        summary["settled_clean_labels"] = clean

        # 3. IPs and devices several withdrawing accounts shared in the window.
        decisions = RiskDecisionLog.objects.filter(ts__gte=since, ts__lt=now)
        shared: list[dict[str, Any]] = []
        for field, kind in (("ip", RiskListEntry.Kind.IP), ("device", RiskListEntry.Kind.DEVICE)):
            groups = (
                decisions.exclude(**{field: ""})
                .values(field)
                .annotate(accounts=Count("merchant_ref", distinct=True), withdrawals=Count("pk"))
                .filter(accounts__gte=2)
                .order_by("-accounts", field)[:100]
            )
            for g in groups:
                value = g[field]
                merchants = sorted(
                    set(decisions.filter(**{field: value}).values_list("merchant_ref", flat=True)[:200])
                )[:20]
                entry = None
                if g["accounts"] >= shared_min:
                    entry = risk_list_add(
                        kind=kind,
                        value=value,
                        reason=f"{g['accounts']} withdrawing accounts shared this {kind} in {window.days} days",
                        source=RiskListEntry.Source.LEARNING_LOOP,
                        expires_at=now + list_for,
                        now=now,
                    )
                shared.append(
                    {
                        "kind": kind,
                        "value": value,
                        "accounts": g["accounts"],
                        "withdrawals": g["withdrawals"],
                        "merchants": merchants,
                        "listed": entry is not None,
                    }
                )
        summary["shared"] = shared
        summary["shared_listed"] = sum(1 for s in shared if s["listed"])
        return LearningLoopRun.objects.create(ran_at=now, window_start=since, summary=summary)
