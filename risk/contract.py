"""What the rest of the platform exchanges with risk.

Events are plain dicts in the format of the shared risk benchmark (``../shared/risk/README.md``): every event
has ``type``, ``ts`` (ISO 8601 UTC, ``Z``) and ``merchant`` (our merchant id as a string), plus the fields of
its type. The live path builds the same dicts as the replay command, so both go through one decision code:

- ``merchant_registered``: kind, category, name, id_number, phone, ip, device
- ``login``: ip, device
- ``phone_changed``: phone, ip, device
- ``bank_card_bound``: card, holder_name, bank, ip, device
- ``sale_credited``: order, amount, buyer
- ``withdrawal_requested``: withdrawal, amount, card, speed, ip, device
- ``fraud_confirmed``: withdrawal
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["allow", "step_up", "review", "block"]
OUTCOME_ORDER: dict[str, int] = {"allow": 0, "step_up": 1, "review": 2, "block": 3}


@dataclass(frozen=True)
class RiskDecision:
    outcome: Outcome
    score: float
    reasons: list[str] = field(default_factory=list)  # rule codes, most important first
    explanation: dict[str, Any] = field(default_factory=dict)  # rules hit, feature values, versions
