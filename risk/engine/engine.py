"""The risk engine: observe events, decide on withdrawals, learn from confirmed fraud.

Replay rule: feed every event in order. ``observe`` folds non-withdrawal events (including
``fraud_confirmed`` feedback) into state; ``decide`` scores a ``withdrawal_requested`` from the state as it
stands, with the event's ``ts`` as "now", and then records the withdrawal. The engine holds no state of its
own beyond configuration: all of it lives in the :class:`~risk.engine.state.StateStore`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from risk.contract import OUTCOME_ORDER, RiskDecision

from .features import DEFAULT_FEATURE_CONFIG, RAW_CONTEXT, FeatureConfig, compute_features
from .model import Model, load_default_model
from .recorder import access, merchant_activity, record_event, record_withdrawal
from .rules import DEFAULT_RULESET, Evaluation, RuleSet, condition_features, evaluate
from .state import MERCHANT, StateStore, UnitOfWork


@dataclass(frozen=True)
class Assessment:
    decision: RiskDecision
    shadow: RiskDecision | None
    features: dict[str, float]


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = _Default()  # use the shipped model artifact


def parse_ts(ts: str | int | float) -> int:
    """Epoch seconds of an ISO 8601 UTC timestamp (``...Z``), or of a number passed through."""
    if isinstance(ts, int | float):
        return int(ts)
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp())


class RiskEngine:
    def __init__(
        self,
        store: StateStore,
        *,
        ruleset: RuleSet = DEFAULT_RULESET,
        model: Model | _Default | None = DEFAULT,
        shadow_ruleset: RuleSet | None = None,
        feature_config: FeatureConfig = DEFAULT_FEATURE_CONFIG,
    ) -> None:
        self.store = store
        self.ruleset = ruleset
        self.model: Model | None = load_default_model() if isinstance(model, _Default) else model
        self.shadow_ruleset = shadow_ruleset
        self.feature_config = feature_config
        self.explain_all_features = False  # put every feature in the explanation (tuning, training)

    # --- events -------------------------------------------------------------------------------------------

    def observe(self, event: dict[str, Any]) -> None:
        """Fold a non-withdrawal event (or ``fraud_confirmed`` feedback) into state."""
        if event.get("type") == "withdrawal_requested":
            raise ValueError("withdrawals go through decide()")
        uow = UnitOfWork(self.store)
        record_event(uow, event, parse_ts(event["ts"]))
        uow.commit()

    def feedback(self, event: dict[str, Any]) -> None:
        """A ``fraud_confirmed`` event: list the merchant's device, IP, card and buyers, link sharers."""
        self.observe(event)

    def decide(self, event: dict[str, Any]) -> RiskDecision:
        """Decide on a ``withdrawal_requested`` event, then record it."""
        return self.decide_with_shadow(event)[0]

    def decide_with_shadow(self, event: dict[str, Any]) -> tuple[RiskDecision, RiskDecision | None]:
        """The live decision and, if a shadow rule set is configured, the shadow one (not recorded)."""
        assessment = self.assess(event)
        return assessment.decision, assessment.shadow

    def assess(self, event: dict[str, Any]) -> Assessment:
        """Decide on a withdrawal and return the decision, the shadow decision and the full feature vector (the
        platform stores the vector with the decision, so later labels can train the model on it)."""
        now = parse_ts(event["ts"])
        uow = UnitOfWork(self.store)
        features = compute_features(uow, event, now, self.feature_config)
        contributions: dict[str, float] = {}
        if self.model is not None:
            features["model_score"], contributions = self.model.explain(features)
        live = evaluate(self.ruleset, features)
        shadow = evaluate(self.shadow_ruleset, features) if self.shadow_ruleset is not None else None
        decision = self._decision(live, features, contributions)
        shadow_decision = self._decision(shadow, features, contributions) if shadow is not None else None
        if shadow_decision is not None:
            decision.explanation["shadow"] = {
                "version": shadow.version,  # type: ignore[union-attr]
                "outcome": shadow_decision.outcome,
                "score": shadow_decision.score,
                "rules": shadow_decision.reasons,
            }
        self._record(uow, event, now, decision, int(features["wd_burst_n"]) + 1)
        return Assessment(decision, shadow_decision, features)

    def process(self, event: dict[str, Any]) -> RiskDecision | None:
        """Replay helper: decide withdrawals, observe everything else."""
        if event.get("type") == "withdrawal_requested":
            return self.decide(event)
        self.observe(event)
        return None

    # --- internals ----------------------------------------------------------------------------------------

    def _decision(
        self, evaluation: Evaluation, features: dict[str, float], contributions: dict[str, float]
    ) -> RiskDecision:
        ruleset = self.ruleset
        if self.shadow_ruleset is not None and evaluation.version == self.shadow_ruleset.version:
            ruleset = self.shadow_ruleset
        by_code = {r.code: r for r in ruleset.rules}
        shown = {"amount_yuan", "model_score"}
        model_rules = []
        for hit in evaluation.hits:
            names = condition_features(by_code[hit.code].when)
            shown.update(names)
            if "model_score" in names:
                model_rules.append(hit.code)
        explanation: dict[str, Any] = {
            "ruleset_version": evaluation.version,
            "rules": [
                {"code": h.code, "score": h.score, **({"outcome": h.outcome} if h.outcome else {})}
                for h in evaluation.hits
            ],
            "features": {k: features[k] for k in sorted(shown) if k in features},
            "thresholds": dict(ruleset.thresholds),
            # Why this outcome: the score's band and the rules that forced an outcome, by severity. The
            # outcome is the most severe of them; points alone never block.
            "outcome_from": {"score_band": evaluation.score_outcome, "forced": evaluation.forced()},
        }
        for name in list(shown):
            shown.update(RAW_CONTEXT.get(name, ()))
        explanation["features"] = {k: features[k] for k in sorted(shown) if k in features}
        if self.explain_all_features:
            explanation["all_features"] = dict(features)
        if self.model is not None:
            explanation["model"] = {
                "version": self.model.version,
                "score": features.get("model_score"),
                "rules": model_rules,
                "points": sum(h.score for h in evaluation.hits if h.code in model_rules),
                "top_contributions": contributions,
            }
        return RiskDecision(
            outcome=evaluation.outcome,
            score=evaluation.score,
            reasons=evaluation.reasons(),
            explanation=explanation,
        )

    def _record(self, uow: UnitOfWork, event: dict[str, Any], now: int, decision: RiskDecision, burst: int) -> None:
        merchant = str(event["merchant"])
        m = uow.row(MERCHANT, merchant)
        merchant_activity(m, now)
        access(uow, merchant, m, event.get("ip"), event.get("device"), now)
        intercepted = OUTCOME_ORDER[decision.outcome] > 0
        record_withdrawal(uow, merchant, m, event, now, intercepted, burst)
        uow.commit()
