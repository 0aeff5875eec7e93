"""Risk services: observe events, decide on withdrawals, take feedback.

The decision code is ``risk.engine`` (features → rules as data + a learned score → allow / step_up / review /
block, with an explanation); here it runs over the RiskState table, inside the caller's transaction, so the
live path and the replay command use exactly the same code.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from .contract import RiskDecision
from .engine import RiskEngine
from .models import RiskLabel
from .store import DbStore

T = TypeVar("T")


@lru_cache(maxsize=1)
def _engine() -> RiskEngine:
    return RiskEngine(DbStore())


def _run(fn: Callable[[RiskEngine], T]) -> T:
    """Run one engine call and write what it learnt in one statement; nothing is kept if it fails."""
    engine = _engine()
    store = engine.store
    assert isinstance(store, DbStore)
    try:
        result = fn(engine)
        store.flush()
    except BaseException:
        store.discard()
        raise
    return result


def risk_engine_reset() -> None:
    """Forget the cached engine (after activating another rule set or model version)."""
    _engine.cache_clear()


def risk_observe(*, event: dict[str, Any]) -> None:
    """Record a non-withdrawal event (registration, login, phone change, card bound, sale credited)."""
    _run(lambda engine: engine.observe(event))


def risk_assess_withdrawal(*, event: dict[str, Any]) -> RiskDecision:
    """Decide on a withdrawal request and remember it."""
    return _run(lambda engine: engine.decide(event))


def risk_feedback(*, withdrawal_ref: str, merchant_ref: str, ts: str) -> None:
    """Confirmed fraud on an earlier withdrawal: the engine lists what the fraudster used and links sharers;
    the label feeds the next model training."""
    event = {"type": "fraud_confirmed", "ts": ts, "merchant": merchant_ref, "withdrawal": withdrawal_ref}
    _run(lambda engine: engine.feedback(event))
    RiskLabel.objects.create(
        withdrawal_ref=withdrawal_ref, merchant_ref=merchant_ref, fraud=True, source=RiskLabel.Source.FRAUD_CONFIRMED
    )
