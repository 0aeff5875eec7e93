"""Channel health: a sliding window of call outcomes per channel and a circuit breaker on top of it.

Every call to a channel (submit or query) is recorded as one ``ChannelOutcome`` row by the caller
(``withdrawals.payouts``). Only *channel-side* failures count against a channel: timeouts, transient errors,
unknown answers and channel problems (funding, keys, maintenance). A merchant's invalid account, a limit that
sends the payout elsewhere or our own bad request are not the channel's fault.

The breaker, per channel, in ``ChannelBreaker`` (a DB row, so it works on SQLite without Redis and across
worker processes):

    closed ──failure rate > budget over ≥ min samples──▶ open ──cool-down──▶ half-open
      ▲                                                   ▲                    │ probes succeed
      └───────────────────────────────────────────────────┼────────────────────┘
                                                          └── a probe fails ───┘

Open: routing sends no new payouts there (payouts already submitted stay and are queried: failover happens
only after a definite failure). Half-open: routing lets ``CHANNEL_BREAKER_HALF_OPEN_PROBES`` payouts through;
that many successes close it, one channel-side failure opens it again. Opening raises a ``ChannelAlert``, logs a
WARNING and counts in ``channel_breaker_opened_total`` (config.metrics, read from ``opened_count``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, Max, Q
from django.utils import timezone

from . import catalogue
from .base import ChannelError, ChannelUnknownOutcome, PayoutStatus
from .catalogue import ErrorClass
from .models import Channel, ChannelAlert, ChannelBreaker, ChannelOutcome

log = logging.getLogger(__name__)

CHANNEL_SIDE_CLASSES = {ErrorClass.TRANSIENT, ErrorClass.UNKNOWN, ErrorClass.CHANNEL}
# Reroute-class reasons that still mean "this channel is not working right now".
CHANNEL_SIDE_REASONS = {"channel_maintenance"}
_REASON_CLASS: dict[str, ErrorClass] = {}


def error_class_for(*, provider: str = "", provider_code: str = "", reason_code: str = "") -> str:
    """Our error class for a failure: by the catalogue entry of the provider code when there is one, else by
    our reason code (the in-process sandbox speaks reason codes only)."""
    if provider and provider_code:
        entry = catalogue.lookup(provider, provider_code)
        if entry.reason != "channel_unclassified_error":
            return str(entry.error_class)
    if not _REASON_CLASS:
        for e in catalogue.CATALOGUE.values():
            # A reason shared by several classes (channel_system_error: transient or unknown) keeps the first;
            # all of them are channel-side or none is.
            _REASON_CLASS.setdefault(e.reason, e.error_class)
    if reason_code in _REASON_CLASS:
        return str(_REASON_CLASS[reason_code])
    if reason_code.startswith("channel_"):
        return str(ErrorClass.CHANNEL)
    return str(ErrorClass.PERMANENT) if reason_code else str(ErrorClass.UNKNOWN)


def counts_against_channel(*, kind: str, error_class: str = "", reason_code: str = "") -> bool:
    if kind == ChannelOutcome.Kind.TIMEOUT:
        return True
    if kind != ChannelOutcome.Kind.FAILURE:
        return False
    return error_class in CHANNEL_SIDE_CLASSES or reason_code in CHANNEL_SIDE_REASONS


# --- alerts -----------------------------------------------------------------------------------------------
def channel_alert_raise(
    *,
    kind: str,
    title: str,
    channel_code: str = "",
    subject: str = "",
    detail: dict[str, Any] | None = None,
    severity: str = ChannelAlert.Severity.WARNING,
    dedupe_key: str = "",
) -> tuple[ChannelAlert, bool]:
    """Record an operations alert. With a ``dedupe_key`` that exists already nothing new is raised."""
    if dedupe_key:
        existing = ChannelAlert.objects.filter(dedupe_key=dedupe_key).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            alert = ChannelAlert.objects.create(
                kind=kind,
                title=title[:200],
                channel_code=channel_code,
                subject=subject[:80],
                detail=detail or {},
                severity=severity,
                dedupe_key=dedupe_key,
            )
    except IntegrityError:  # raised concurrently under the same key
        return ChannelAlert.objects.get(dedupe_key=dedupe_key), False
    log.warning("ALERT %s %s: %s", kind, channel_code or subject, title)
    return alert, True


def channel_alert_acknowledge(*, alert_id: int, by: str) -> None:
    ChannelAlert.objects.filter(pk=alert_id, acknowledged_at__isnull=True).update(
        acknowledged_at=timezone.now(), acknowledged_by=by[:150]
    )


# --- window statistics ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WindowStats:
    calls: int = 0
    failures: int = 0  # channel-side only
    avg_latency_ms: float | None = None
    max_latency_ms: int | None = None
    error_classes: dict[str, int] = field(default_factory=dict)

    @property
    def failure_rate(self) -> float:
        return self.failures / self.calls if self.calls else 0.0

    @property
    def success_rate(self) -> float | None:
        return 1.0 - self.failure_rate if self.calls else None


def window_stats(
    *,
    codes: list[str] | None = None,
    now: datetime | None = None,
    seconds: int | None = None,
    since: dict[str, datetime] | None = None,
) -> dict[str, WindowStats]:
    """Per channel: calls, channel-side failures, latency and error classes in the sliding window. ``since``
    narrows a channel's window further (a breaker that closed starts clean)."""
    now = now or timezone.now()
    start = now - timedelta(seconds=seconds or settings.CHANNEL_HEALTH_WINDOW_SECONDS)
    rows = ChannelOutcome.objects.filter(at__gt=start, at__lte=now)
    if codes is not None:
        rows = rows.filter(channel_code__in=codes)
    if since:
        narrowing = Q()
        for code, moment in since.items():
            narrowing |= Q(channel_code=code, at__lt=moment)
        rows = rows.exclude(narrowing)
    totals = rows.values("channel_code").annotate(
        calls=Count("pk"),
        failures=Count("pk", filter=Q(counts_against_channel=True)),
        avg_latency=Avg("latency_ms"),
        max_latency=Max("latency_ms"),
    )
    classes: dict[str, dict[str, int]] = {}
    for row in rows.exclude(error_class="").values("channel_code", "error_class").annotate(n=Count("pk")):
        classes.setdefault(row["channel_code"], {})[row["error_class"]] = row["n"]
    return {
        t["channel_code"]: WindowStats(
            calls=t["calls"],
            failures=t["failures"],
            avg_latency_ms=round(t["avg_latency"], 1) if t["avg_latency"] is not None else None,
            max_latency_ms=t["max_latency"],
            error_classes=classes.get(t["channel_code"], {}),
        )
        for t in totals
    }


# --- breaker ----------------------------------------------------------------------------------------------
def failure_budget(channel: Channel) -> float:
    bp = channel.error_budget_bp if channel.error_budget_bp is not None else settings.CHANNEL_BREAKER_FAILURE_RATE_BP
    return bp / 10_000


@dataclass(frozen=True)
class BreakerView:
    state: str
    probes_left: int
    changed_at: datetime | None
    reason: str = ""

    @property
    def admits_new_payouts(self) -> bool:
        return self.state == ChannelBreaker.State.CLOSED or (
            self.state == ChannelBreaker.State.HALF_OPEN and self.probes_left > 0
        )


def _effective(b: ChannelBreaker, now: datetime) -> tuple[str, int]:
    """State and probes left as of ``now``: an open breaker past its cool-down is half-open; a half-open one
    whose probes never reported back within another cool-down gets a fresh batch."""
    cooldown = timedelta(seconds=settings.CHANNEL_BREAKER_COOLDOWN_SECONDS)
    probes = settings.CHANNEL_BREAKER_HALF_OPEN_PROBES
    if b.state == ChannelBreaker.State.OPEN:
        if now >= b.changed_at + cooldown:
            return ChannelBreaker.State.HALF_OPEN, probes
        return ChannelBreaker.State.OPEN, 0
    if b.state == ChannelBreaker.State.HALF_OPEN:
        if b.probes_admitted >= probes and now >= b.changed_at + cooldown:
            return ChannelBreaker.State.HALF_OPEN, probes
        return ChannelBreaker.State.HALF_OPEN, max(probes - b.probes_admitted, 0)
    return ChannelBreaker.State.CLOSED, 0


def breaker_views(*, codes: list[str], now: datetime | None = None) -> dict[str, BreakerView]:
    """Read-only breaker state for routing and monitoring (no locks; admission happens in channel_reserve)."""
    now = now or timezone.now()
    found = {
        b.channel.code: b for b in ChannelBreaker.objects.filter(channel__code__in=codes).select_related("channel")
    }
    views = {}
    for code in codes:
        b = found.get(code)
        if b is None:
            views[code] = BreakerView(ChannelBreaker.State.CLOSED, 0, None)
            continue
        state, left = _effective(b, now)
        views[code] = BreakerView(state, left, b.changed_at, b.reason)
    return views


def _breaker_locked(channel: Channel, now: datetime) -> ChannelBreaker:
    ChannelBreaker.objects.get_or_create(channel=channel, defaults={"changed_at": now, "window_since": now})
    b = (
        ChannelBreaker.objects.select_for_update(no_key=True, of=("self",))
        .select_related("channel")
        .get(channel=channel)
    )
    state, left = _effective(b, now)
    fresh_batch = (
        state == ChannelBreaker.State.HALF_OPEN
        and b.probes_admitted > 0
        and (left == settings.CHANNEL_BREAKER_HALF_OPEN_PROBES)
    )
    if state != b.state or fresh_batch:
        log.info("channel %s breaker half-open: letting probes through", channel.code)
        b.state, b.changed_at, b.probes_admitted, b.probes_succeeded = state, now, 0, 0
        b.save(update_fields=["state", "changed_at", "probes_admitted", "probes_succeeded"])
    return b


def breaker_admit(*, channel: Channel, now: datetime) -> tuple[bool, str]:
    """Inside the caller's transaction: may one more new payout go to this channel? Counts a half-open probe."""
    b = _breaker_locked(channel, now)
    if b.state == ChannelBreaker.State.OPEN:
        return False, "breaker open"
    if b.state == ChannelBreaker.State.HALF_OPEN:
        if b.probes_admitted >= settings.CHANNEL_BREAKER_HALF_OPEN_PROBES:
            return False, "breaker half-open, probes in flight"
        b.probes_admitted += 1
        b.save(update_fields=["probes_admitted"])
    return True, ""


def _open(b: ChannelBreaker, now: datetime, reason: str, stats: WindowStats | None) -> None:
    first = b.state == ChannelBreaker.State.CLOSED
    b.state, b.changed_at, b.probes_admitted, b.probes_succeeded = ChannelBreaker.State.OPEN, now, 0, 0
    b.reason = reason[:255]
    b.opened_count += 1
    b.save(update_fields=["state", "changed_at", "probes_admitted", "probes_succeeded", "reason", "opened_count"])
    code = b.channel.code
    log.warning("channel %s circuit breaker OPEN: %s", code, reason)
    if first:
        detail: dict[str, Any] = {"reason": reason, "opened_count": b.opened_count}
        if stats is not None:
            detail.update(calls=stats.calls, failures=stats.failures, error_classes=stats.error_classes)
        channel_alert_raise(
            kind=ChannelAlert.Kind.BREAKER_OPENED,
            channel_code=code,
            severity=ChannelAlert.Severity.CRITICAL,
            title=f"通道 {b.channel.name} 熔断：{reason}，新出款已切换到其他通道",
            detail=detail,
            dedupe_key=f"breaker:{code}:{b.opened_count}",
        )


def _evaluate(b: ChannelBreaker, *, counted_failure: bool, now: datetime) -> None:
    channel = b.channel
    if b.state == ChannelBreaker.State.HALF_OPEN:
        if counted_failure:
            _open(b, now, "probe failed while half-open", None)
            return
        b.probes_succeeded += 1
        if b.probes_succeeded >= settings.CHANNEL_BREAKER_HALF_OPEN_PROBES:
            b.state, b.changed_at, b.window_since = ChannelBreaker.State.CLOSED, now, now
            b.reason = ""
            b.save(update_fields=["state", "changed_at", "window_since", "reason", "probes_succeeded"])
            log.warning("channel %s circuit breaker closed: %s probes succeeded", channel.code, b.probes_succeeded)
            channel_alert_raise(
                kind=ChannelAlert.Kind.BREAKER_CLOSED,
                channel_code=channel.code,
                severity=ChannelAlert.Severity.INFO,
                title=f"通道 {channel.name} 已恢复，熔断关闭",
                dedupe_key=f"breaker-closed:{channel.code}:{b.opened_count}",
            )
        else:
            b.save(update_fields=["probes_succeeded"])
        return
    if b.state == ChannelBreaker.State.CLOSED and counted_failure:
        stats = window_stats(codes=[channel.code], now=now, since={channel.code: b.window_since}).get(channel.code)
        budget = failure_budget(channel)
        if stats and stats.calls >= settings.CHANNEL_BREAKER_MIN_SAMPLES and stats.failure_rate > budget:
            _open(b, now, f"failure rate {stats.failure_rate:.1%} > {budget:.1%} over {stats.calls} calls", stats)


def channel_outcome_record(
    *,
    channel_code: str,
    operation: str,
    kind: str,
    error_class: str = "",
    reason_code: str = "",
    latency_ms: int | None = None,
    now: datetime | None = None,
) -> ChannelOutcome:
    """Record one call's outcome and move the channel's breaker if that changes its health."""
    now = now or timezone.now()
    against = counts_against_channel(kind=kind, error_class=error_class, reason_code=reason_code)
    with transaction.atomic():
        outcome = ChannelOutcome.objects.create(
            channel_code=channel_code,
            at=now,
            operation=operation,
            kind=kind,
            error_class=error_class,
            reason_code=reason_code[:40],
            latency_ms=latency_ms,
            counts_against_channel=against,
        )
        channel = Channel.objects.filter(code=channel_code).first()
        if channel is not None:
            b = _breaker_locked(channel, now)
            if b.state != ChannelBreaker.State.OPEN:
                _evaluate(b, counted_failure=against, now=now)
    return outcome


def channel_outcomes_prune(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CHANNEL_OUTCOME_RETENTION_DAYS)
    deleted, _ = ChannelOutcome.objects.filter(at__lt=cutoff).delete()
    return deleted


def channel_call_observe(
    *,
    channel_code: str,
    operation: str,
    started: float,
    result: Any = None,
    error: Exception | None = None,
) -> None:
    """Record one adapter call (``started`` from ``time.monotonic()``): its answer, or the error it raised."""
    latency_ms = int((time.monotonic() - started) * 1000)
    provider = Channel.objects.filter(code=channel_code).values_list("adapter", flat=True).first() or ""
    if isinstance(error, ChannelUnknownOutcome):
        kind, reason, provider_code = ChannelOutcome.Kind.TIMEOUT, error.reason_code, error.provider_code
        error_class = str(ErrorClass.UNKNOWN)
    elif isinstance(error, ChannelError):
        kind, reason, provider_code = ChannelOutcome.Kind.FAILURE, error.reason_code, error.provider_code
        error_class = error_class_for(provider=provider, provider_code=provider_code, reason_code=reason)
    elif error is not None:  # our own bug or broken config: the channel was never asked
        kind, reason, error_class = ChannelOutcome.Kind.FAILURE, "channel_misconfigured", str(ErrorClass.CHANNEL)
    elif result is not None and result.status == PayoutStatus.FAILED:
        kind, reason = ChannelOutcome.Kind.FAILURE, result.reason_code
        error_class = error_class_for(provider=provider, provider_code=result.provider_code, reason_code=reason)
    else:
        kind, reason, error_class = ChannelOutcome.Kind.SUCCESS, "", ""
    try:
        channel_outcome_record(
            channel_code=channel_code,
            operation=operation,
            kind=kind,
            error_class=error_class,
            reason_code=reason,
            latency_ms=latency_ms,
        )
    except Exception:  # health bookkeeping must never stop money from moving
        log.exception("could not record a %s outcome for channel %s", operation, channel_code)
