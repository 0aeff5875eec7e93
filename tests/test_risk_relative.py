"""risk-rules-4: signals relative to the merchant's own history, its peers and the platform's traffic, and the
gradient-boosted score (issue 10). Pure engine tests: no database."""

from __future__ import annotations

import math
import random

import pytest

from risk.engine import DEFAULT_RULESET, InMemoryStore, RiskEngine, TreeModelArtifact, model_from_dict, train_trees
from risk.engine.features import burst_history_max
from risk.engine.rules import RULESET_3, evaluate
from risk.engine.trees import model_features

T0 = 1_780_000_000  # some UTC second; the engine only compares times
HOUR = 3600
DAY = 86_400


class Shop:
    """Drives one merchant's events into an engine."""

    def __init__(self, engine: RiskEngine, name: str, *, registered: int, category: str = "game_cards") -> None:
        self.engine, self.name, self.n = engine, name, 0
        engine.observe(
            {"type": "merchant_registered", "ts": registered, "merchant": name, "kind": "individual",
             "category": category, "name": "王伟", "id_number": "11010519491231002X", "phone": "13800000000",
             "ip": f"10.{len(name)}.0.1", "device": f"dev_{name}"}
        )  # fmt: skip
        engine.observe(
            {"type": "bank_card_bound", "ts": registered + 60, "merchant": name, "card": f"card_{name}",
             "holder_name": "王伟", "bank": "ICBC", "ip": f"10.{len(name)}.0.1", "device": f"dev_{name}"}
        )  # fmt: skip

    def credit(self, ts: int, amount_yuan: float, buyer: str) -> None:
        self.n += 1
        self.engine.observe(
            {"type": "sale_credited", "ts": ts, "merchant": self.name, "order": f"o_{self.name}_{self.n}",
             "amount": int(amount_yuan * 100), "buyer": buyer}
        )  # fmt: skip

    def withdraw(self, ts: int, amount_yuan: float, *, device: str | None = None, ip: str | None = None):
        self.n += 1
        return self.engine.assess(
            {"type": "withdrawal_requested", "ts": ts, "merchant": self.name, "withdrawal": f"w_{self.name}_{self.n}",
             "amount": int(amount_yuan * 100), "card": f"card_{self.name}", "speed": "standard",
             "ip": ip or f"10.{len(self.name)}.0.1", "device": device or f"dev_{self.name}"}
        )  # fmt: skip


def _ordinary_history(shop: Shop, rng: random.Random, *, days: int, order_yuan: float, start: int) -> int:
    """Sales from shared pool buyers and a weekly payout; returns the time the history ends."""
    t = start
    for day in range(days):
        for _ in range(3):
            shop.credit(
                t + day * DAY + rng.randint(0, 20 * HOUR),
                order_yuan * rng.uniform(0.6, 1.5),
                f"pool{rng.randrange(50)}",
            )
        if day % 7 == 6:
            shop.withdraw(t + day * DAY + 21 * HOUR, order_yuan * 10)
    return t + days * DAY


def test_burst_history_does_not_count_the_burst_being_decided():
    times = [0, 600, 1200, 10 * HOUR, 10 * HOUR + 60, 10 * HOUR + 120, 10 * HOUR + 180]
    # Before the current burst (which began at 10 h) the most in one 2 h window was 3.
    assert burst_history_max(times, 10 * HOUR, 2 * HOUR) == 3
    assert burst_history_max(times, 10 * HOUR + 10**6, 2 * HOUR) == 4


def test_rules_4_is_a_new_version_and_3_still_loads():
    assert DEFAULT_RULESET.version == "risk-rules-4"
    assert RULESET_3.version == "risk-rules-3"
    codes = {r.code for r in DEFAULT_RULESET.rules}
    assert {"structuring_under_threshold_fresh_money", "withdrawal_burst_beyond_own_history"} <= codes
    assert "structuring_freshly_funded" not in codes  # the constant 10 % band is gone from the live set


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0])
def test_structuring_below_a_lower_band_is_caught_at_any_price_level(scale):
    """44,000 yuan (12 % under the threshold, outside risk-rules-3's 10 % band), paid from credits far larger
    than the merchant's own, on marketplaces whose ordinary orders are 0.3× to 4× ours."""
    rng = random.Random(1)
    engine = RiskEngine(InMemoryStore(), model=None)
    shop = Shop(engine, "m1", registered=T0)
    end = _ordinary_history(shop, rng, days=20, order_yuan=80 * scale, start=T0 + HOUR)
    for i in range(3):
        shop.credit(end + i * HOUR, 15_000, f"new{i}")
    assessment = shop.withdraw(end + 4 * HOUR, 44_000)
    decision = assessment.decision
    assert decision.outcome == "review"
    assert "structuring_under_threshold_fresh_money" in decision.reasons
    # risk-rules-3's constant 10 % band did not see it.
    assert evaluate(RULESET_3, assessment.features).outcome == "allow"
    # The explanation shows the raw numbers behind the ratios.
    shown = decision.explanation["features"]
    assert shown["threshold_gap"] == pytest.approx(0.12)
    assert shown["typical_credit_yuan"] > 0 and "recent_max_credit_yuan" in shown


def test_an_ordinary_big_payout_near_the_threshold_is_not_structuring():
    """A big merchant whose own sales are large withdraws 46,000 yuan of a week's ordinary sales."""
    rng = random.Random(2)
    engine = RiskEngine(InMemoryStore(), model=None)
    shop = Shop(engine, "big", registered=T0)
    end = _ordinary_history(shop, rng, days=21, order_yuan=2_200, start=T0 + HOUR)
    decision = shop.withdraw(end + 2 * HOUR, 46_000).decision
    assert not {"structuring_under_threshold_fresh_money", "structuring_repeated_under_threshold"} & set(
        decision.reasons
    )


def test_a_promotion_day_of_instalments_does_not_look_like_a_velocity_burst():
    """Many merchants paying out in instalments within the same hours is the platform, not one merchant."""
    rng = random.Random(3)
    engine = RiskEngine(InMemoryStore(), model=None)
    shops = [Shop(engine, f"s{i:02d}", registered=T0) for i in range(12)]
    end = T0 + HOUR
    for s in shops:
        end = max(end, _ordinary_history(s, rng, days=10, order_yuan=60, start=T0 + HOUR))
    promo = end + 12 * HOUR
    decisions = []
    for k in range(4):  # every shop pays out its promotion sales in four instalments within the hour
        for i, s in enumerate(shops):
            decisions.append(s.withdraw(promo + k * 900 + i * 30, 300))
    late = decisions[-12:]
    assert all(d.features["platform_burst_merchants_3h"] >= 5 for d in late)
    assert all("withdrawal_burst_beyond_own_history" not in d.decision.reasons for d in late)


def test_a_lone_merchants_burst_beyond_its_own_history_is_flagged():
    rng = random.Random(4)
    engine = RiskEngine(InMemoryStore(), model=None)
    for i in range(40):  # the rest of the platform sells as usual (so its traffic shows no promotion)
        _ordinary_history(Shop(engine, f"bg{i:02d}", registered=T0), rng, days=15, order_yuan=60, start=T0 + HOUR)
    shop = Shop(engine, "v1", registered=T0)
    end = _ordinary_history(shop, rng, days=14, order_yuan=60, start=T0 + HOUR)
    for i in range(5):
        shop.credit(end + i * 600, 400, f"fresh{i}")
    outcomes = [shop.withdraw(end + 2 * HOUR + i * 300, 380) for i in range(5)]
    last = outcomes[-1]
    assert last.features["burst_beyond_history"] >= 4
    assert last.decision.outcome != "allow"
    assert "withdrawal_burst_beyond_own_history" in last.decision.reasons


def test_peer_credit_sizes_come_from_the_category():
    rng = random.Random(5)
    engine = RiskEngine(InMemoryStore(), model=None)
    peers = [Shop(engine, f"p{i}", registered=T0, category="membership") for i in range(5)]
    for p in peers:
        for k in range(20):
            p.credit(T0 + HOUR + k * 600, 35 * rng.uniform(0.8, 1.25), f"b{rng.randrange(100)}")
    fresh = Shop(engine, "n1", registered=T0 + 5 * HOUR, category="membership")
    fresh.credit(T0 + 6 * HOUR, 3_000, "only1")
    fresh.credit(T0 + 7 * HOUR, 3_000, "only2")
    a = fresh.withdraw(T0 + 9 * HOUR, 5_900)
    assert 25 <= a.features["peer_median_credit_yuan"] <= 45
    assert a.features["mean_credit_vs_peer"] > 50
    assert a.decision.outcome != "allow"
    assert "new_account_outsized_exclusive_credits" in a.decision.reasons


def _synthetic(n: int, seed: int) -> tuple[list[dict[str, float]], list[bool]]:
    rng = random.Random(seed)
    rows, labels = [], []
    for _ in range(n):
        fraud = rng.random() < 0.2
        rows.append({
            "amount_vs_usual_payout": rng.uniform(4, 30) if fraud else rng.uniform(0.2, 3),
            "new_access_h": rng.uniform(0, 3) if fraud else rng.uniform(0, 900),
            "noise": rng.random(),
            "amount_yuan": rng.uniform(10, 10_000),  # absolute: never read by the trees
        })  # fmt: skip
        labels.append(fraud)
    return rows, labels


def test_trees_score_in_pure_python_and_explain_exactly():
    rows, labels = _synthetic(1_500, 6)
    artifact = train_trees(rows, labels, max_iter=30, max_leaf_nodes=7, min_samples_leaf=10)
    assert "amount_yuan" not in artifact.features and "model_score" not in artifact.features
    assert artifact.features == model_features(["amount_vs_usual_payout", "new_access_h", "noise", "amount_yuan"])
    again = model_from_dict(artifact.to_dict())
    assert isinstance(again, TreeModelArtifact) and again == artifact
    fraud_row = {"amount_vs_usual_payout": 12.0, "new_access_h": 0.5, "noise": 0.3}
    legit_row = {"amount_vs_usual_payout": 0.9, "new_access_h": 400.0, "noise": 0.3}
    assert artifact.score(fraud_row) > 0.9 > 0.1 > artifact.score(legit_row)
    score, top = artifact.explain(fraud_row, top=10)
    assert score == pytest.approx(artifact.score(fraud_row), abs=1e-5)
    # Contributions plus the bias (baseline + each tree's root expectation) are the log-odds.
    bias = artifact.baseline + sum(tree[0][5] for tree in artifact.trees)
    logit = math.log(score / (1 - score))
    assert bias + sum(top.values()) == pytest.approx(logit, abs=1e-2)
    assert max(top, key=lambda k: abs(top[k])) in {"amount_vs_usual_payout", "new_access_h"}


def test_the_engine_shows_the_trees_contributions_in_the_explanation():
    rows, labels = _synthetic(800, 7)
    artifact = train_trees(rows, labels, max_iter=20, max_leaf_nodes=7, min_samples_leaf=10, version="gbt-test")
    engine = RiskEngine(InMemoryStore(), model=artifact)
    shop = Shop(engine, "e1", registered=T0)
    shop.credit(T0 + HOUR, 100, "b1")
    decision = shop.withdraw(T0 + 2 * HOUR, 90).decision
    model = decision.explanation["model"]
    assert model["version"] == "gbt-test"
    assert 0.0 <= model["score"] <= 1.0
    assert set(model["top_contributions"]) <= set(artifact.features)


def test_the_shipped_model_is_the_gradient_boosted_one():
    engine = RiskEngine(InMemoryStore())
    assert isinstance(engine.model, TreeModelArtifact)
    assert engine.model.metrics["trained_on"]["tuning_sets"] >= 30
