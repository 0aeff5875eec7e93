"""What /metrics shows about withdrawals, computed at scrape time from the database (registered with
``config.metrics`` in ``WithdrawalsConfig.ready()``)."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from .models import FINAL_STATES, Status, Withdrawal


def withdrawal_metrics() -> Iterator[Metric]:
    """Withdrawals per non-final state, stuck and unknown ones, settled payouts by channel and outcome."""
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
