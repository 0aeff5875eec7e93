"""Risk services: observe events, decide on withdrawals, take feedback.

The decision code is ``risk.engine`` (features → rules as data + a learned score → allow / step_up / review /
block, with an explanation); here it runs over the RiskState table, inside the caller's transaction, so the
live path and the replay command use exactly the same code.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from .contract import RiskDecision
from .engine import RiskEngine
from .models import RiskLabel
from .store import DbStore


@lru_cache(maxsize=1)
def _engine() -> RiskEngine:
    return RiskEngine(DbStore())


def risk_engine_reset() -> None:
    """Forget the cached engine (after activating another rule set or model version)."""
    _engine.cache_clear()


def risk_observe(*, event: dict[str, Any]) -> None:
    """Record a non-withdrawal event (registration, login, phone change, card bound, sale credited)."""
    _engine().observe(event)


def risk_assess_withdrawal(*, event: dict[str, Any]) -> RiskDecision:
    """Decide on a withdrawal request and remember it."""
    return _engine().decide(event)


def risk_feedback(*, withdrawal_ref: str, merchant_ref: str, ts: str) -> None:
    """Confirmed fraud on an earlier withdrawal: the engine lists what the fraudster used and links sharers;
    the label feeds the next model training."""
    _engine().feedback({"type": "fraud_confirmed", "ts": ts, "merchant": merchant_ref, "withdrawal": withdrawal_ref})
    RiskLabel.objects.create(
        withdrawal_ref=withdrawal_ref, merchant_ref=merchant_ref, fraud=True, source=RiskLabel.Source.FRAUD_CONFIRMED
    )
