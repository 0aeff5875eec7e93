"""Rules as data.

A rule is a code, a description, a condition over features, a score to add and optionally an outcome it forces
at least. Conditions are JSON-like trees::

    {"feature": "card_age_h", "op": "<", "value": 24}
    {"all": [cond, ...]}    {"any": [cond, ...]}    {"not": cond}

A :class:`RuleSet` is a versioned list of rules plus the thresholds mapping the total score to an outcome.
``ruleset_from_dict``/``RuleSet.to_dict`` round-trip it through JSON, so rule sets can be stored, diffed
and shadow-tested. :func:`evaluate` applies one rule set; :func:`evaluate_shadow` applies a live and a shadow
set to the same features and returns both results.

How the outcome is decided: outcomes combine by severity (block > review > step_up > allow), never by adding
up. The total score picks a band — allow, step_up or review — and each rule that hits with an ``outcome``
forces at least that outcome; the most severe of these wins. Points alone never block: a block refuses the
merchant's money with no human in the loop, so it needs block-type evidence, a rule whose own outcome is
``block`` (confirmed fraud, a listed device / card / identity, an invalid identity number, a new card right
after a phone change). Rules that send a case to a human (``review``) or that only add points measure
overlapping signals — a shared device and an IP cluster are often the same ring seen twice — so however many
of them hit, the case goes to review, ranked by its score. The learned model has no band of its own by
design: it adds points through two rules, so it can raise a case to review, never block it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from risk.contract import OUTCOME_ORDER, Outcome

OPS: dict[str, Callable[[float, Any], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
    "in": lambda a, b: a in b,
}

Condition = Mapping[str, Any]


def check_condition(cond: Condition) -> None:
    """Raise ValueError if ``cond`` is not a well-formed condition tree."""
    if "all" in cond or "any" in cond:
        items = cond.get("all", cond.get("any"))
        if not isinstance(items, list | tuple) or not items:
            raise ValueError(f"empty or non-list all/any: {cond!r}")
        for item in items:
            check_condition(item)
    elif "not" in cond:
        check_condition(cond["not"])
    else:
        if cond.get("op") not in OPS or not isinstance(cond.get("feature"), str) or "value" not in cond:
            raise ValueError(f"bad condition: {cond!r}")


def holds(cond: Condition, features: Mapping[str, float]) -> bool:
    """Evaluate a condition tree. A missing feature makes a leaf false."""
    if "all" in cond:
        return all(holds(c, features) for c in cond["all"])
    if "any" in cond:
        return any(holds(c, features) for c in cond["any"])
    if "not" in cond:
        return not holds(cond["not"], features)
    value = features.get(cond["feature"])
    if value is None:
        return False
    return OPS[cond["op"]](value, cond["value"])


def condition_features(cond: Condition) -> list[str]:
    """Names of the features a condition reads, in order of appearance."""
    if "all" in cond or "any" in cond:
        return [name for c in cond.get("all", cond.get("any")) for name in condition_features(c)]
    if "not" in cond:
        return condition_features(cond["not"])
    return [cond["feature"]]


@dataclass(frozen=True)
class Rule:
    code: str
    description: str
    when: Condition
    score: float = 0.0
    outcome: Outcome | None = None  # the least outcome this rule forces when it hits

    def __post_init__(self) -> None:
        check_condition(self.when)
        if self.outcome is not None and self.outcome not in OUTCOME_ORDER:
            raise ValueError(f"{self.code}: unknown outcome {self.outcome!r}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "description": self.description, "when": self.when}
        if self.score:
            data["score"] = self.score
        if self.outcome:
            data["outcome"] = self.outcome
        return data


SCORE_BANDS: tuple[Outcome, ...] = ("step_up", "review")  # the outcomes points can reach, mildest first
DEFAULT_THRESHOLDS: dict[str, float] = {"step_up": 40.0, "review": 70.0}
BLOCK_THRESHOLD_REFUSED = (
    "a score threshold cannot block: only a rule whose outcome is block blocks (remove thresholds.block)"
)


@dataclass(frozen=True)
class RuleSet:
    version: str
    rules: tuple[Rule, ...]
    # Minimum total score for each score band. There is no block band: only block rules block.
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))

    def __post_init__(self) -> None:
        codes = [r.code for r in self.rules]
        if len(codes) != len(set(codes)):
            raise ValueError("duplicate rule codes")
        if "block" in self.thresholds:
            raise ValueError(BLOCK_THRESHOLD_REFUSED)
        unknown = set(self.thresholds) - set(SCORE_BANDS)
        if unknown:
            raise ValueError(f"unknown threshold outcomes: {sorted(unknown)}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "thresholds": dict(self.thresholds),
            "rules": [r.to_dict() for r in self.rules],
        }

    def features(self) -> list[str]:
        return sorted({name for r in self.rules for name in condition_features(r.when)})


def ruleset_from_dict(data: Mapping[str, Any]) -> RuleSet:
    """A rule set from its JSON document. Documents stored before risk-rules-3 carry a ``block`` score threshold;
    it is dropped here (points no longer block), so those versions still load. New imports refuse it
    (``risk.rulesets.ruleset_import``)."""
    thresholds = {k: v for k, v in (data.get("thresholds") or DEFAULT_THRESHOLDS).items() if k != "block"}
    return RuleSet(
        version=str(data["version"]),
        rules=tuple(
            Rule(
                code=r["code"],
                description=r.get("description", ""),
                when=r["when"],
                score=float(r.get("score", 0.0)),
                outcome=r.get("outcome"),
            )
            for r in data["rules"]
        ),
        thresholds=thresholds,
    )


@dataclass(frozen=True)
class RuleHit:
    code: str
    score: float
    outcome: Outcome | None


@dataclass(frozen=True)
class Evaluation:
    version: str
    outcome: Outcome
    score: float
    hits: tuple[RuleHit, ...]
    score_outcome: Outcome = "allow"  # the band the total score reached (never block)

    def reasons(self) -> list[str]:
        """Rule codes, most important first (forced outcome, then score)."""
        ranked = sorted(self.hits, key=lambda h: (-OUTCOME_ORDER[h.outcome] if h.outcome else 0, -h.score, h.code))
        return [h.code for h in ranked]

    def forced(self) -> dict[str, list[str]]:
        """Which rules forced which outcome, most severe outcome first."""
        by_outcome: dict[str, list[str]] = {}
        for h in sorted(self.hits, key=lambda h: h.code):
            if h.outcome:
                by_outcome.setdefault(h.outcome, []).append(h.code)
        return dict(sorted(by_outcome.items(), key=lambda item: -OUTCOME_ORDER[item[0]]))


def outcome_for_score(thresholds: Mapping[str, float], score: float) -> Outcome:
    """The score band: allow, step_up or review. Points alone never block."""
    outcome: Outcome = "allow"
    for candidate in SCORE_BANDS:
        limit = thresholds.get(candidate)
        if limit is not None and score >= limit:
            outcome = candidate
    return outcome


def evaluate(ruleset: RuleSet, features: Mapping[str, float]) -> Evaluation:
    hits = tuple(RuleHit(r.code, r.score, r.outcome) for r in ruleset.rules if holds(r.when, features))
    score = round(sum(h.score for h in hits), 3)
    band = outcome_for_score(ruleset.thresholds, score)
    outcome = band  # by severity: the score's band, or the most severe outcome a rule forced if worse
    for h in hits:
        if h.outcome and OUTCOME_ORDER[h.outcome] > OUTCOME_ORDER[outcome]:
            outcome = h.outcome
    return Evaluation(ruleset.version, outcome, score, hits, score_outcome=band)


def evaluate_shadow(
    live: RuleSet, shadow: RuleSet | None, features: Mapping[str, float]
) -> tuple[Evaluation, Evaluation | None]:
    """The live decision and, beside it, what the shadow rule set would have decided."""
    return evaluate(live, features), (evaluate(shadow, features) if shadow is not None else None)


# --- the default rule set ---------------------------------------------------------------------------------


def feat(feature: str, op: str, value: Any) -> dict[str, Any]:
    return {"feature": feature, "op": op, "value": value}


NOT_PROMOTION = feat("platform_credit_surge", "<", 1.6)  # a platform-wide sales surge explains bursts

DEFAULT_RULES: list[dict[str, Any]] = [
    # Identity.
    {
        "code": "id_number_invalid",
        "description": "KYC identity number fails the GB 11643-1999 check character",
        "when": feat("id_invalid", "==", 1),
        "score": 100,
        "outcome": "block",
    },
    {
        "code": "card_holder_not_kyc_name",
        "description": "Payout card's holder is not the merchant's KYC name (after normalising spaces)",
        "when": feat("card_name_mismatch", "==", 1),
        "score": 70,
        "outcome": "review",
    },
    # Account takeover.
    {
        "code": "new_card_after_phone_change",
        "description": "Payout to a card bound in the last 24 h, within 24 h of a phone-number change",
        "when": {"all": [feat("card_age_h", "<", 24), feat("phone_change_age_h", "<", 24)]},
        "score": 100,
        "outcome": "block",
    },
    {
        "code": "new_card_new_device_new_ip",
        "description": "Payout to a card bound in the last 24 h, from a device and an IP new to the account",
        "when": {
            "all": [
                feat("card_age_h", "<", 24),
                feat("card_is_additional", "==", 1),
                feat("device_age_h", "<", 24),
                feat("ip_age_h", "<", 24),
                feat("account_age_h", ">=", 72),
            ]
        },
        "score": 50,
    },
    # Dormant account.
    {
        "code": "dormant_reactivated_new_device",
        "description": "Account silent 30+ days came back from a device it never used, and withdraws",
        "when": {"all": [feat("dormant_gap_d", ">=", 30), feat("reactivated_on_new_device", "==", 1)]},
        "score": 70,
        "outcome": "review",
    },
    # Linked accounts.
    {
        "code": "device_shared_by_many_accounts",
        "description": "Device used by 3+ merchant accounts (or registered 3+)",
        "when": {"any": [feat("device_other_merchants", ">=", 2), feat("device_registrations", ">=", 3)]},
        "score": 70,
        "outcome": "review",
    },
    {
        "code": "ip_cluster_newcomers",
        "description": "2+ other accounts newly using this IP or /24 in the last 72 h, none registered there",
        "when": {"any": [feat("net_newcomers", ">=", 2), feat("ip_newcomers", ">=", 2)]},
        "score": 70,
        "outcome": "review",
    },
    # Confirmed-fraud feedback.
    {
        "code": "merchant_confirmed_fraud",
        "description": "The merchant has a confirmed fraudulent withdrawal",
        "when": feat("flag_merchant", "==", 1),
        "score": 100,
        "outcome": "block",
    },
    {
        "code": "device_or_card_confirmed_fraud",
        "description": "Device or card used in a confirmed fraudulent withdrawal",
        "when": {"any": [feat("flag_device", "==", 1), feat("flag_card", "==", 1)]},
        "score": 100,
        "outcome": "block",
    },
    {
        "code": "ip_confirmed_fraud",
        "description": "IP used in a confirmed fraudulent withdrawal",
        "when": feat("flag_ip", "==", 1),
        "score": 70,
        "outcome": "review",
    },
    {
        "code": "linked_to_confirmed_fraud",
        "description": "Shares a device, IP or card with an account with confirmed fraud",
        "when": feat("linked_to_fraud", "==", 1),
        "score": 45,
    },
    {
        "code": "funded_by_fraud_buyers",
        "description": "Most recent credits come from buyers first seen at a confirmed-fraud account",
        "when": feat("recent_flagged_buyer_share", ">=", 0.5),
        "score": 20,
    },
    # High-risk lists (admin-edited, confirmed-fraud feedback, learning loop).
    {
        "code": "listed_device_card_or_id",
        "description": "Device, card or identity number is on the high-risk list",
        "when": feat("list_device_card_id", "==", 1),
        "score": 100,
        "outcome": "block",
    },
    {
        "code": "listed_phone",
        "description": "The merchant's phone number is on the high-risk list",
        "when": feat("list_phone", "==", 1),
        "score": 70,
        "outcome": "review",
    },
    {
        "code": "listed_ip",
        "description": "IP is on the high-risk list",
        "when": feat("list_ip", "==", 1),
        "score": 30,
    },
    {
        "code": "learning_loop_shared_entity",
        "description": "IP or device the learning loop found shared by several withdrawing accounts (score only)",
        "when": feat("list_learning_n", ">=", 1),
        "score": 20,
    },
    # Structuring under the large-value threshold.
    {
        "code": "structuring_freshly_funded",
        "description": "Just under the large-value threshold, funded by large credits in the last 24 h",
        "when": {
            "all": [
                feat("near_threshold", "==", 1),
                feat("credit_cover_24h", ">=", 0.8),
                feat("recent_max_credit_share", ">=", 0.15),
                feat("platform_credit_surge", "<", 2.0),
            ]
        },
        "score": 70,
        "outcome": "review",
    },
    {
        "code": "structuring_new_money_account",
        "description": "Just under the large-value threshold; nearly all the account's money is recent",
        "when": {"all": [feat("near_threshold", "==", 1), feat("recent_credit_share", ">=", 0.8)]},
        "score": 70,
        "outcome": "review",
    },
    {
        "code": "structuring_repeated",
        "description": "Repeatedly just under the large-value threshold, after unusually large credits",
        "when": {
            "all": [
                feat("near_threshold", "==", 1),
                feat("near_threshold_prior_14d", ">=", 1),
                feat("recent_max_credit_vs_median", ">=", 5),
            ]
        },
        "score": 70,
        "outcome": "review",
    },
    # Large sudden payout.
    {
        "code": "large_sudden_new_access",
        "description": "Many times the usual payout, funded by large credits from new buyers, from a new device or IP",
        "when": {
            "all": [
                {"any": [feat("device_age_h", "<", 24), feat("ip_age_h", "<", 24)]},
                {
                    "any": [
                        {"all": [feat("withdrawals_n", ">=", 2), feat("amount_vs_usual", ">=", 5)]},
                        feat("amount_vs_usual", ">=", 8),  # a usual payout guessed from sales alone
                    ]
                },
                feat("recent_new_buyer_share", ">=", 0.7),
                feat("recent_max_credit_share", ">=", 0.25),
                {
                    "any": [
                        feat("recent_max_credit_vs_median", ">=", 5),
                        feat("recent_max_credit_vs_median", "==", 0),  # too little history to compare
                        feat("credit_surge_24h", ">=", 8),
                    ]
                },
            ]
        },
        "score": 60,
        "outcome": "review",
    },
    {
        "code": "large_first_payout_new_device_and_ip",
        "description": "First payout of an older account, from a new device and a new IP, of money that just "
        "arrived from never-seen buyers",
        "when": {
            "all": [
                feat("withdrawals_n", "==", 0),
                feat("account_age_h", ">=", 72),
                feat("device_age_h", "<", 24),
                feat("ip_age_h", "<", 24),
                feat("recent_new_buyer_share", ">=", 0.9),
                feat("recent_max_credit_share", ">=", 0.3),
                feat("drain_share", ">=", 0.8),
            ]
        },
        "score": 50,
    },
    # Velocity burst.
    {
        "code": "credit_surge_from_new_buyers",
        "description": "4+ credits in 6 h from never-seen buyers, far above the usual rate (no promotion)",
        "when": {
            "all": [
                feat("credits_6h_n", ">=", 4),
                feat("new_buyers_24h_n", ">=", 4),
                feat("new_buyer_share_24h", ">=", 0.6),
                feat("credit_count_surge_6h", ">=", 4),
                NOT_PROMOTION,
            ]
        },
        "score": 45,
    },
    {
        "code": "withdrawal_burst_after_new_buyer_credits",
        "description": "Another withdrawal within 2 h, credits mostly from never-seen buyers (no promotion)",
        "when": {
            "all": [
                feat("wd_burst_n", ">=", 1),
                feat("new_buyers_24h_n", ">=", 4),
                feat("new_buyer_share_24h", ">=", 0.6),
                NOT_PROMOTION,
            ]
        },
        "score": 45,
    },
    {
        "code": "withdrawal_burst_beyond_history",
        "description": "More withdrawals within 2 h than ever before, by 3 or more (not a promotion)",
        "when": {"all": [feat("burst_excess", ">=", 3), NOT_PROMOTION]},
        "score": 45,
    },
    {
        "code": "burst_after_intercepted",
        "description": "Another withdrawal within 2 h of one that was intercepted",
        "when": {"all": [feat("wd_burst_n", ">=", 1), feat("intercepted_24h_n", ">=", 1)]},
        "score": 40,
    },
    # New account cash-out (快进快出).
    {
        "code": "new_account_cashout",
        "description": "Account under 24 h old, credited by at most 3 buyers seen nowhere else, withdrawing",
        "when": {
            "all": [
                feat("account_age_h", "<", 24),
                feat("exclusive_buyer_share", ">=", 0.9),
                feat("buyers_n", "<=", 3),
                feat("withdrawn_share", ">=", 0.3),
            ]
        },
        "score": 25,
    },
    {
        "code": "new_account_repeat_buyers",
        "description": "Young account's credits come repeatedly from the same few buyers",
        "when": {"all": [feat("account_age_h", "<", 48), feat("credits_per_buyer", ">=", 1.5)]},
        "score": 20,
    },
    {
        "code": "new_account_large_credits",
        "description": "Young account already credited 1,500 yuan or more",
        "when": {"all": [feat("account_age_h", "<", 48), feat("credited_yuan", ">=", 1500)]},
        "score": 20,
    },
    # Learned score.
    {
        "code": "model_high",
        "description": "Learned fraud score is high",
        "when": feat("model_score", ">=", 0.9),
        "score": 15,
    },
    {
        "code": "model_very_high",
        "description": "Learned fraud score is very high",
        "when": feat("model_score", ">=", 0.99),
        "score": 15,
    },
]

# risk-rules-3: the rules of risk-rules-2; the score no longer has a block band (it was 100), so review-type
# rules no longer add up to a block.
RULESET_3 = ruleset_from_dict(
    {
        "version": "risk-rules-3",
        "thresholds": {"step_up": 40, "review": 70},
        "rules": DEFAULT_RULES,
    }
)

# --- risk-rules-4: relative signals (issue 10) -------------------------------------------------------------
#
# The typologies that risk-rules-3 decided with a constant — an amount, a count in a window, a band under the
# threshold, "at most 3 buyers", "1,500 yuan" — missed on marketplaces whose numbers differ from ours. Their
# rules below compare with the context instead: the merchant's own credit sizes (else its category's), its own
# cadence of credits and withdrawals, its usual payout, and the platform's traffic (a promotion lifts every
# merchant at once, so platform_credit_surge gates every burst rule). The learned score carries weight: a high
# score steps up on its own and a very high one goes to review (cut-offs chosen on the tuning parameter sets
# for the FPR budget, gated on held-out ones: README, Risk control).

REPLACED_IN_4 = {
    # Constants: a 10 % band under 50,000 yuan with fixed ratios; "more bursts than ever" that counted the
    # burst itself; at most 3 buyers; 1,500 yuan credited; model points too small to matter.
    "structuring_freshly_funded",
    "structuring_new_money_account",
    "structuring_repeated",
    "withdrawal_burst_beyond_history",
    "new_account_large_credits",
    "large_sudden_new_access",  # 5× / 8× the usual payout, 0.7 new-buyer share: replaced by the relative rule
    "model_high",
    "model_very_high",
}

NOT_PROMOTION_24H = feat("platform_credit_surge_24h", "<", 1.6)
# Other merchants paying out in bursts right now, against the most seen in the same hours of the last 7 days:
# a promotion's instalments, not one merchant's burst.
NOT_PLATFORM_BURST = feat("platform_burst_surge", "<", 4)
# Burst rules of risk-rules-3 kept in 4 with the platform-burst guard added.
GUARDED_IN_4 = {"withdrawal_burst_after_new_buyer_credits", "burst_after_intercepted", "credit_surge_from_new_buyers"}
# Rules of risk-rules-3 kept in 4 with fewer points: on their own they stepped up ordinary merchants on
# marketplaces unlike ours (a new carrier IP and a big order); beside the learned score they still count.
RESCORED_IN_4 = {"large_first_payout_new_device_and_ip": 25.0, "credit_surge_from_new_buyers": 25.0}

RELATIVE_RULES: list[dict[str, Any]] = [
    # Structuring: just under the threshold (within 20 %), paid from money that is new or outsized for this
    # merchant, or again after an earlier one, funded by credits far above its own sizes.
    {
        "code": "structuring_under_threshold_fresh_money",
        "description": "Within 20 % under the large-value threshold, paid from credits 5× the merchant's typical "
        "credit, or nearly all its money is recent",
        "when": {
            "all": [
                feat("threshold_gap", ">", 0),
                feat("threshold_gap", "<=", 0.2),
                {"any": [feat("outsized_credit_cover", ">=", 0.5), feat("recent_credit_share", ">=", 0.8)]},
            ]
        },
        "score": 70,
        "outcome": "review",
    },
    {
        "code": "structuring_repeated_under_threshold",
        "description": "Again within 20 % under the large-value threshold (14 days), after credits 5× its typical",
        "when": {
            "all": [
                feat("threshold_gap", ">", 0),
                feat("threshold_gap", "<=", 0.2),
                feat("near_threshold_prior_20pct_14d", ">=", 1),
                feat("recent_max_credit_vs_typical", ">=", 5),
            ]
        },
        "score": 70,
        "outcome": "review",
    },
    # Large sudden payout, relative: outsized credits for this merchant pay for a payout far above its usual one,
    # from a device or IP it began using hours ago.
    {
        "code": "large_sudden_outsized_credits",
        "description": "3× the usual payout, half of it from credits 5× the merchant's typical credit (new "
        "buyers), from a device or IP first used in the last 6 h, draining the balance",
        "when": {
            "all": [
                feat("account_age_h", ">=", 48),
                feat("new_access_h", "<", 6),
                feat("outsized_credit_cover", ">=", 0.5),
                feat("drain_share", ">=", 0.8),
                feat("recent_new_buyer_share", ">=", 0.5),
                feat("amount_vs_usual_payout", ">=", 3),
            ]
        },
        "score": 30,
    },
    # Velocity burst, relative: more withdrawals in one window than the merchant ever made before this burst,
    # right after credits far above its own rate (no platform-wide surge).
    {
        "code": "withdrawal_burst_beyond_own_history",
        "description": "3+ more withdrawals within 2 h than the merchant ever made in one window before (no promotion)",
        "when": {"all": [feat("burst_beyond_history", ">=", 3), NOT_PROMOTION, NOT_PROMOTION_24H, NOT_PLATFORM_BURST]},
        "score": 45,
    },
    {
        "code": "withdrawal_burst_after_credit_surge",
        "description": "Another withdrawal within 2 h, beyond its own history, after 3+ credits from new buyers in "
        "12 h at 3× its own rate (no promotion)",
        "when": {
            "all": [
                feat("wd_burst_n", ">=", 1),
                feat("burst_beyond_history", ">=", 1),
                feat("new_buyer_credits_12h_n", ">=", 3),
                feat("credits_12h_vs_rate", ">=", 3),
                NOT_PROMOTION,
                NOT_PLATFORM_BURST,
            ]
        },
        "score": 45,
    },
    # New account cash-out, relative to peers: credits several times the category's typical size.
    {
        "code": "new_account_outsized_exclusive_credits",
        "description": "Account under 24 h old, funded by buyers seen nowhere else with credits 5× its peers' "
        "median (category and kind), withdrawing",
        "when": {
            "all": [
                feat("account_age_h", "<", 24),
                feat("exclusive_buyer_share", ">=", 0.9),
                feat("withdrawn_share", ">=", 0.3),
                feat("mean_credit_vs_peer", ">=", 5),
            ]
        },
        "score": 45,
    },
    {
        "code": "new_account_outsized_credits",
        "description": "Young account whose credits average 8× its peers' median",
        "when": {"all": [feat("account_age_h", "<", 48), feat("mean_credit_vs_peer", ">=", 8)]},
        "score": 20,
    },
    # The learned score (see risk/engine/trees.py): it steps up alone, and goes to review when very high.
    {
        "code": "model_high",
        "description": "Learned fraud score is high (cut-off 0.2: the tuning sets' FPR budget, README)",
        "when": feat("model_score", ">=", 0.2),
        "score": 40,
    },
    {
        "code": "model_very_high",
        "description": "Learned fraud score is very high",
        "when": feat("model_score", ">=", 0.9),
        "score": 30,
        "outcome": "review",
    },
]


def _carried_into_4(rule: dict[str, Any]) -> dict[str, Any]:
    out = dict(rule)
    if rule["code"] in GUARDED_IN_4:
        out["when"] = {"all": [rule["when"], NOT_PLATFORM_BURST]}
    if rule["code"] in RESCORED_IN_4:
        out["score"] = RESCORED_IN_4[rule["code"]]
    return out


DEFAULT_RULES_4: list[dict[str, Any]] = [
    _carried_into_4(r) for r in DEFAULT_RULES if r["code"] not in REPLACED_IN_4
] + RELATIVE_RULES

DEFAULT_RULESET = ruleset_from_dict(
    {
        "version": "risk-rules-4",
        "thresholds": {"step_up": 40, "review": 70},
        "rules": DEFAULT_RULES_4,
    }
)
