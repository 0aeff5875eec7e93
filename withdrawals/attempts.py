"""The payout's record at the channels: one ``PayoutAttempt`` per routing to a channel, and every answer the
channel gave (or did not give) about it as a ``PayoutAnswer``. Both tables are append-only in the database;
the worker writes them inside the transaction that applies what it learned, under the withdrawal's row lock.

Which channels a payout must not be routed to again is read from the answers: the ones it left after a
definite refusal, since the last time every channel had refused it (then they may all be tried again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max

from channels.services import RoutingDecision

from .models import PayoutAnswer, PayoutAttempt, Withdrawal

Outcome = PayoutAnswer.Outcome


def attempt_open(w: Withdrawal, *, decision: RoutingDecision, admission_refused: dict[str, str]) -> PayoutAttempt:
    """A new attempt at the routed channel for a locked withdrawal; it becomes the withdrawal's current one
    (the caller saves ``current_attempt``)."""
    number = PayoutAttempt.objects.filter(withdrawal=w).count() + 1
    attempt = PayoutAttempt.objects.create(
        withdrawal=w,
        number=number,
        channel_code=decision.channel_code,
        channel_name=decision.channel_name,
        expected_arrival_seconds=decision.expected_arrival_seconds,
        order_no=w.order_no,
        amount=w.net_amount,
        policy=str(decision.explanation.get("policy", ""))[:60],
        explanation=decision.explanation,
        admission_refused=admission_refused,
    )
    w.current_attempt = attempt
    return attempt


def answer_record(
    w: Withdrawal,
    *,
    outcome: str,
    source: str,
    channel_code: str = "",
    reason_code: str = "",
    provider_code: str = "",
    action: str = "",
    moved_on: bool = False,
    channel_reference: str = "",
    detail: str = "",
) -> PayoutAnswer:
    """Append what a channel answered about a locked withdrawal's payout (its current attempt when the answer
    is from the current channel, else that channel's latest attempt)."""
    code = channel_code or w.channel_code
    current = w.current_attempt_id
    if current is not None and code == w.channel_code:
        attempt_id: int | None = current
    else:
        attempt_id = (
            PayoutAttempt.objects.filter(withdrawal=w, channel_code=code)
            .order_by("-number")
            .values_list("pk", flat=True)
            .first()
        )
    return PayoutAnswer.objects.create(
        withdrawal=w,
        attempt_id=attempt_id,
        channel_code=code,
        source=source,
        outcome=outcome,
        reason_code=reason_code[:60],
        provider_code=provider_code[:100],
        action=action[:20],
        moved_on=moved_on,
        channel_reference=channel_reference[:100],
        detail=detail[:255],
    )


def excluded_channels(w: Withdrawal) -> tuple[str, ...]:
    """The channels this payout left after a definite refusal and may not be routed to again (yet)."""
    codes = (
        PayoutAnswer.objects.filter(withdrawal=w, moved_on=True, pk__gt=w.exclusions_reset_after)
        .values_list("channel_code", flat=True)
        .distinct()
    )
    return tuple(sorted(codes))


def exclusions_reset(w: Withdrawal) -> None:
    """Every channel it could use refused it once: those were definite refusals, nothing is pending there, so
    they may all be tried again (the caller saves ``exclusions_reset_after``)."""
    last = PayoutAnswer.objects.filter(withdrawal=w).aggregate(last=Max("pk"))["last"]
    w.exclusions_reset_after = last or 0


def refusal_count(w: Withdrawal) -> int:
    """Definite refusals of this payout so far, at any channel (the retry back-off grows with them)."""
    return PayoutAnswer.objects.filter(withdrawal=w, outcome=Outcome.REFUSED).count()


# --- reads for the API, the pages and the admin ---------------------------------------------------------
@dataclass(frozen=True)
class AttemptView:
    number: int
    channel_code: str
    channel_name: str
    expected_arrival_seconds: int | None
    started_at: datetime
    answers: list[dict[str, Any]]


def attempts_of(w: Withdrawal) -> list[AttemptView]:
    """A withdrawal's attempts in order, each with its answers (outcome, reason, when)."""
    attempts = list(PayoutAttempt.objects.filter(withdrawal=w).order_by("number"))
    answers: dict[int | None, list[dict[str, Any]]] = {}
    for a in PayoutAnswer.objects.filter(withdrawal=w).order_by("id"):
        answers.setdefault(a.attempt_id, []).append(
            {
                "outcome": a.outcome,
                "source": a.source,
                "reason_code": a.reason_code,
                "provider_code": a.provider_code,
                "action": a.action,
                "moved_on": a.moved_on,
                "at": a.created_at,
            }
        )
    return [
        AttemptView(
            number=t.number,
            channel_code=t.channel_code,
            channel_name=t.channel_name,
            expected_arrival_seconds=t.expected_arrival_seconds,
            started_at=t.created_at,
            answers=answers.get(t.pk, []),
        )
        for t in attempts
    ]


def routing_explanation(w: Withdrawal) -> dict[str, Any]:
    """The routing decision of the current attempt (empty before the payout was routed)."""
    if w.current_attempt_id is None:
        return {}
    attempt = PayoutAttempt.objects.filter(pk=w.current_attempt_id).only("explanation").first()
    return dict(attempt.explanation) if attempt is not None else {}
