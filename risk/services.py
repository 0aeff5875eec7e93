"""Risk services: observe events, decide on withdrawals.

Foundation rule set: stateless rules over the withdrawal event. The risk issue replaces the internals with
the feature/rule/model engine; the two signatures stay.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from .contract import OUTCOME_ORDER, RiskDecision

REVIEW_AMOUNT_FEN = 2_000_000  # 20,000 yuan


def risk_observe(*, event: dict[str, Any]) -> None:
    """Record a non-withdrawal event (login, card bound, sale credited, ...)."""
    return None


def risk_assess_withdrawal(*, event: dict[str, Any]) -> RiskDecision:
    amount = int(event["amount"])
    hits: list[tuple[str, str, float]] = []
    if amount >= settings.LARGE_VALUE_THRESHOLD_FEN:
        hits.append(("large_value", "review", 60.0))
    elif amount >= REVIEW_AMOUNT_FEN:
        hits.append(("high_amount", "review", 40.0))
    outcome = "allow"
    for _code, forced, _score in hits:
        if OUTCOME_ORDER[forced] > OUTCOME_ORDER[outcome]:
            outcome = forced
    return RiskDecision(
        outcome=outcome,  # type: ignore[arg-type]
        score=sum(s for *_x, s in hits),
        reasons=[c for c, *_x in hits],
        explanation={
            "version": "foundation-1",
            "rules": [c for c, *_x in hits],
            "features": {"amount": amount},
        },
    )
