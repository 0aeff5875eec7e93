"""Robustness harness: the risk engine over many generated marketplaces whose numbers it has never seen.

    .venv/bin/python scripts/risk_harness.py [--sets 40] [--tune 10] [--grid-seed 7] [--jobs 2]
                                             [--merchants 120 260] [--days 24 40] [--json OUT.json]
                                             [--only tune|held] [--features-out ROWS.jsonl]
                                             [--ruleset R.json] [--model M.json | --no-model]

For each of ``--sets`` parameter sets it draws a random override of the shared generator's ``DEFAULT_PARAMS``
(``--params`` deep-merges it: amounts, windows, counts, device / IP reuse, typology mix, fraud share, feedback
rate and delay, promotion day and size, start date, ordinary behaviour; see :func:`draw_params`), generates one
stream with ``../shared/risk/generate.py`` into a temporary directory, replays it in file order through the
in-memory engine (the same code as ``risk_replay``), and scores the decisions with ``../shared/risk/score.py``.

Parameter sets, never rows, are split: the first ``--tune`` sets (in draw order) are the *tune* sets — the only
ones anyone may look at while changing rules, thresholds or the model — and the rest are *held out*. The grid
is reproducible from ``--grid-seed``; each set's stream seed is derived from it too.

It prints one line per set (withdrawals, fraud, overall recall, each typology's recall with its fraud count,
legit FPR) and, per split, the worst case of each column and the pooled figures, and says whether the targets
hold on the held-out sets: worst overall recall ≥ 0.95, every typology ≥ 0.85 in every set, FPR ≤ 0.005 in
every set. Exit status 0 whatever the figures (2 if the shared benchmark is missing).

``--features-out`` writes every withdrawal's full feature vector with its label, typology, set and split (to
train the learned score on tune sets and gate it on held-out ones: ``scripts/risk_tune.py train-harness``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_RISK = REPO.parent / "shared" / "risk"
sys.path.insert(0, str(REPO))

from risk.engine import InMemoryStore, RiskEngine, load_model, ruleset_from_dict  # noqa: E402

TYPOLOGIES = (
    "large_sudden",
    "velocity_burst",
    "structuring",
    "new_account_cashout",
    "account_takeover",
    "device_farm",
    "ip_cluster",
    "name_mismatch",
    "fake_identity",
    "dormant_reactivation",
)
SHORT = {
    "large_sudden": "lrg",
    "velocity_burst": "vel",
    "structuring": "str",
    "new_account_cashout": "nac",
    "account_takeover": "ato",
    "device_farm": "dfm",
    "ip_cluster": "ipc",
    "name_mismatch": "nmm",
    "fake_identity": "fid",
    "dormant_reactivation": "dor",
}
TARGETS = {"recall": 0.95, "typology_recall": 0.85, "false_positive_rate": 0.005}


# --- the grid ------------------------------------------------------------------------------------------------


def _span(rng: random.Random, lo: tuple[float, float], width: tuple[float, float], digits: int = 0) -> list[float]:
    """A [low, high] pair: low drawn from ``lo``, high = low × a factor drawn from ``width``."""
    low = rng.uniform(*lo)
    high = low * rng.uniform(*width)
    if digits == 0:
        return [round(low), max(round(low), round(high))]
    return [round(low, digits), round(max(low, high), digits)]


def draw_params(rng: random.Random, merchants: tuple[int, int], days: tuple[int, int]) -> dict[str, Any]:
    """One random override of the generator's DEFAULT_PARAMS (every key exists there; deep-merged by --params).

    Ranges straddle the defaults: amounts from a third to three times ours, windows and counts halved to
    doubled, more or less device and IP reuse, any typology mix, fraud share 1.5-8 %, feedback from none to
    most within 0.5-10 days, the promotion on any day (or none) and bigger or smaller, any start date."""
    n_days = rng.randint(*days)
    start = f"20{rng.randint(25, 28)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T00:00:00Z"
    amount = math.exp(rng.uniform(math.log(1 / 3), math.log(3)))  # ordinary order sizes
    rate = math.exp(rng.uniform(math.log(0.5), math.log(2)))  # ordinary order rates
    categories = {
        "game_cards": {"orders_per_day": 0.7, "order_median_yuan": 60, "order_sigma": 0.9},
        "phone_topup": {"orders_per_day": 0.85, "order_median_yuan": 100, "order_sigma": 0.5},
        "ecommerce_cards": {"orders_per_day": 0.45, "order_median_yuan": 300, "order_sigma": 0.8},
        "membership": {"orders_per_day": 0.65, "order_median_yuan": 35, "order_sigma": 0.6},
    }
    for cat in categories.values():
        cat["orders_per_day"] = round(cat["orders_per_day"] * rate * rng.uniform(0.7, 1.4), 3)
        cat["order_median_yuan"] = max(5, round(cat["order_median_yuan"] * amount * rng.uniform(0.7, 1.4)))
        cat["order_sigma"] = round(cat["order_sigma"] * rng.uniform(0.7, 1.3), 2)
    promo_day: int | None = rng.randint(3, n_days - 2) if rng.random() < 0.85 else None
    fb_min = round(rng.uniform(0.5, 3), 1)
    mix = {t: round(rng.uniform(0.03, 0.2), 3) for t in TYPOLOGIES}
    return {
        "start": start,
        "days": n_days,
        "merchants": rng.randint(*merchants),
        "fraud_share": round(rng.uniform(0.015, 0.08), 3),
        "min_cases_per_typology": rng.randint(3, 5),
        "fraud_start_day": rng.randint(4, max(5, min(14, n_days // 2))),
        "feedback": {
            "rate": round(rng.uniform(0.0, 0.8), 2),
            "min_days": fb_min,
            "max_days": round(fb_min + rng.uniform(1, 7), 1),
        },
        "typology_mix": mix,
        "normal": {
            "onboarding_days": rng.randint(3, 12),
            "late_joiner_share": round(rng.uniform(0.05, 0.25), 3),
            "business_share": round(rng.uniform(0.1, 0.35), 3),
            "categories": categories,
            "rate_sigma": round(rng.uniform(0.4, 0.9), 2),
            "business_amount_mult": round(rng.uniform(2.5, 6), 2),
            "big_merchant_share": round(rng.uniform(0.01, 0.05), 3),
            "big_amount_mult": round(rng.uniform(5, 12), 2),
            "withdraw_styles": {
                s: round(rng.uniform(0.05, 0.5), 3) for s in ("daily", "weekly", "threshold", "sporadic")
            },
            "threshold_days": _span(rng, (2, 5), (1.5, 4)),
            "withdraw_all_share": round(rng.uniform(0.3, 0.7), 2),
            "round_amount_share": round(rng.uniform(0.05, 0.3), 2),
            "night_owl_share": round(rng.uniform(0.02, 0.15), 3),
            "devices": [1, rng.randint(2, 4)],
            "primary_device_share": round(rng.uniform(0.55, 0.9), 2),
            "mobile_ip_rate": round(rng.uniform(0.03, 0.3), 3),
            "login_before_withdrawal": round(rng.uniform(0.7, 1.0), 2),
            "travel_share": round(rng.uniform(0.03, 0.2), 3),
            "new_device_share": round(rng.uniform(0.05, 0.25), 3),
            "phone_change_share": round(rng.uniform(0.01, 0.08), 3),
            "second_card_share": round(rng.uniform(0.05, 0.3), 3),
            "shared_device_pair_share": round(rng.uniform(0.0, 0.03), 3),
            "shared_ip_group_share": round(rng.uniform(0.0, 0.06), 3),
            "returning_share": round(rng.uniform(0.0, 0.03), 3),
        },
        "promotion": {
            "day": promo_day,
            "participation": round(rng.uniform(0.3, 0.85), 2),
            "sales_mult": _span(rng, (2, 4), (1.3, 2.5), 1),
            "next_day_mult": round(rng.uniform(1.0, 2.0), 2),
            "split_share": round(rng.uniform(0.1, 0.45), 2),
            "split_count": [2, rng.randint(3, 5)],
            "split_window_min": rng.randint(30, 120),
        },
        "typologies": {
            "velocity_burst": {
                "count": _span(rng, (3, 6), (1.3, 2.2)),
                "window_min": _span(rng, (10, 30), (2, 6)),
                "surge_credits": _span(rng, (3, 6), (1.3, 2.5)),
                "surge_mult": _span(rng, (1.5, 3), (1.5, 3), 1),
                "surge_min_yuan": rng.randint(500, 3000),
                "surge_lead_hours": _span(rng, (0.5, 2), (2, 6), 1),
                "instant_share": round(rng.uniform(0.5, 0.95), 2),
            },
            "large_sudden": {
                "ratio": _span(rng, (4, 10), (2, 4), 1),
                "topup_credits": [1, rng.randint(2, 4)],
                "topup_lead_hours": _span(rng, (1, 4), (6, 24), 1),
                "delay_min": _span(rng, (1, 5), (20, 60)),
                "new_device_share": round(rng.uniform(0.4, 0.9), 2),
                "new_ip_share": round(rng.uniform(0.5, 0.95), 2),
            },
            "account_takeover": {"delay_min": _span(rng, (2, 10), (3, 12))},
            "device_farm": {
                "accounts": _span(rng, (4, 8), (1.3, 2.2)),
                "devices": [1, rng.randint(1, 3)],
                "register_span_hours": _span(rng, (3, 12), (3, 10)),
                "credit_total_yuan": _span(rng, (150, 800), (3, 12)),
                "cashout_hours": _span(rng, (3, 12), (3, 8)),
            },
            "ip_cluster": {
                "accounts": _span(rng, (4, 8), (1.3, 2)),
                "subnet": rng.random() < 0.4,
                "credit_total_yuan": _span(rng, (200, 1500), (4, 15)),
                "window_hours": _span(rng, (0.5, 2), (1.5, 4), 1),
            },
            "new_account_cashout": {
                "buyers": [1, rng.randint(1, 4)],
                "credits": _span(rng, (1, 3), (1.5, 3)),
                "total_yuan": _span(rng, (500, 4000), (3, 15)),
                "credit_hours": _span(rng, (0.5, 2), (3, 10), 1),
                "cashout_hours": [round(rng.uniform(1, 4), 1), round(rng.uniform(10, 24), 1)],
            },
            "structuring": {
                "band_yuan": [rng.randint(44000, 48500), rng.randint(49000, 49999)],
                "withdrawals": _span(rng, (2, 4), (1.3, 2.2)),
                "span_days": _span(rng, (1, 3), (1.5, 3), 1),
                "linked_share": round(rng.uniform(0.1, 0.6), 2),
            },
            "name_mismatch": {"same_surname_share": round(rng.uniform(0.2, 0.7), 2)},
            "dormant_reactivation": {
                "dormant_days": [rng.randint(60, 90), rng.randint(150, 400)],
                "balance_yuan": _span(rng, (200, 2000), (5, 30)),
                "new_ip_share": round(rng.uniform(0.4, 0.9), 2),
                "new_card_share": round(rng.uniform(0.1, 0.5), 2),
            },
        },
    }


@dataclass(frozen=True)
class ParamSet:
    index: int
    split: str  # tune | held
    seed: int
    params: dict[str, Any]


def grid(n_sets: int, n_tune: int, grid_seed: int, merchants: tuple[int, int], days: tuple[int, int]) -> list[ParamSet]:
    rng = random.Random(grid_seed)
    sets = []
    for i in range(n_sets):
        params = draw_params(rng, merchants, days)
        seed = rng.randint(100, 10**6)  # never the shared samples' seeds 1 and 2
        sets.append(ParamSet(i, "tune" if i < n_tune else "held", seed, params))
    return sets


# --- one set -------------------------------------------------------------------------------------------------


def load_scorer() -> Any:
    spec = importlib.util.spec_from_file_location("shared_risk_score", SHARED_RISK / "score.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {SHARED_RISK / 'score.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generate(ps: ParamSet, out_dir: Path) -> None:
    params_file = out_dir / "params.json"
    params_file.write_text(json.dumps(ps.params), encoding="utf-8")
    subprocess.run(
        [
            sys.executable,
            str(SHARED_RISK / "generate.py"),
            "--out-dir",
            str(out_dir),
            "--seed",
            str(ps.seed),
            "--params",
            str(params_file),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def make_engine(options: dict[str, Any]) -> RiskEngine:
    kwargs: dict[str, Any] = {}
    if options.get("ruleset"):
        kwargs["ruleset"] = ruleset_from_dict(json.loads(Path(options["ruleset"]).read_text(encoding="utf-8")))
    if options.get("no_model"):
        kwargs["model"] = None
    elif options.get("model"):
        kwargs["model"] = load_model(options["model"])
    engine = RiskEngine(InMemoryStore(), **kwargs)
    engine.explain_all_features = bool(options.get("features"))
    return engine


def run_set(ps: ParamSet, options: dict[str, Any]) -> dict[str, Any]:
    """Generate, replay in memory, score. Returns the scorer's summary plus the set's identity."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="risk-harness-") as tmp:
        out = Path(tmp)
        generate(ps, out)
        engine = make_engine(options)
        decisions: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []
        events = 0
        with open(out / "events.jsonl", encoding="utf-8") as f:
            for line in f:
                event = json.loads(line)
                events += 1
                if event["type"] != "withdrawal_requested":
                    engine.observe(event)
                    continue
                decision = engine.decide(event)
                decisions.append(
                    {
                        "withdrawal": event["withdrawal"],
                        "decision": decision.outcome,
                        "score": decision.score,
                        "reasons": decision.reasons,
                    }
                )
                if options.get("features"):
                    rows.append({"withdrawal": event["withdrawal"], "features": decision.explanation["all_features"]})
        labels = [json.loads(line) for line in (out / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    summary = load_scorer().score(labels, decisions)
    result = {
        "index": ps.index,
        "split": ps.split,
        "seed": ps.seed,
        "events": events,
        "seconds": round(time.perf_counter() - started, 2),
        "summary": summary,
        "params": ps.params,
    }
    if options.get("features"):
        by_id = {lab["withdrawal"]: lab for lab in labels}
        result["rows"] = [
            {
                "set": ps.index,
                "split": ps.split,
                "fraud": by_id[r["withdrawal"]]["fraud"],
                "typology": by_id[r["withdrawal"]]["typology"],
                **r,
            }
            for r in rows
        ]
    return result


def _run(args: tuple[ParamSet, dict[str, Any]]) -> dict[str, Any]:
    return run_set(*args)


def run_sets(sets: list[ParamSet], options: dict[str, Any], jobs: int) -> list[dict[str, Any]]:
    if jobs <= 1 or len(sets) <= 1:
        return [run_set(ps, options) for ps in sets]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_run, [(ps, options) for ps in sets]))


# --- the table -----------------------------------------------------------------------------------------------


def typology_recall(summary: dict[str, Any], typology: str) -> tuple[float | None, int]:
    stats = summary["typologies"].get(typology)
    if not stats or not stats["fraud"]:
        return None, 0
    return stats["recall"], stats["fraud"]


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst case per column over the sets, and the pooled figures (all sets' withdrawals together)."""
    if not results:
        return {}
    worst: dict[str, Any] = {
        "sets": len(results),
        "recall": min(r["summary"]["recall"] for r in results),
        "false_positive_rate": max(r["summary"]["false_positive_rate"] for r in results),
        "typology": {},
    }
    pooled_t: dict[str, list[int]] = {}
    fraud = intercepted = legit = legit_hit = 0
    for r in results:
        s = r["summary"]
        fraud += s["fraud"]
        intercepted += round(s["recall"] * s["fraud"])
        legit += s["legit"]
        legit_hit += round(s["false_positive_rate"] * s["legit"])
        for t, st in s["typologies"].items():
            acc = pooled_t.setdefault(t, [0, 0])
            acc[0] += st["fraud"]
            acc[1] += st["intercepted"]
    for t in TYPOLOGIES:
        values = [(v, n, r["index"]) for r in results for v, n in [typology_recall(r["summary"], t)] if v is not None]
        if values:
            v, n, idx = min(values)
            worst["typology"][t] = {"recall": v, "fraud": n, "set": idx}
    worst["pooled"] = {
        "recall": intercepted / fraud if fraud else None,
        "false_positive_rate": legit_hit / legit if legit else None,
        "fraud": fraud,
        "legit": legit,
        "typology": {t: (acc[1] / acc[0] if acc[0] else None) for t, acc in sorted(pooled_t.items())},
    }
    failures = []
    if worst["recall"] < TARGETS["recall"]:
        failures.append(f"worst recall {worst['recall']:.3f}")
    if worst["false_positive_rate"] > TARGETS["false_positive_rate"]:
        failures.append(f"worst FPR {worst['false_positive_rate']:.4f}")
    for t, w in worst["typology"].items():
        if w["recall"] < TARGETS["typology_recall"]:
            failures.append(f"{t} {w['recall']:.2f} (set {w['set']}, {w['fraud']} fraud)")
    worst["targets_met"] = not failures
    worst["failures"] = failures
    return worst


def _cell(value: float | None, n: int) -> str:
    return "    -    " if value is None else f"{value:5.2f}/{n:<3d}"


def print_table(results: list[dict[str, Any]], out: Any = sys.stdout) -> None:
    header = f"{'set':>3} {'split':5} {'events':>6} {'wd':>5} {'fraud':>5} {'recall':>6} {'FPR':>6}  " + " ".join(
        f"{SHORT[t]:^9}" for t in TYPOLOGIES
    )
    print(header, file=out)
    for r in sorted(results, key=lambda r: r["index"]):
        s = r["summary"]
        cells = " ".join(_cell(*typology_recall(s, t)) for t in TYPOLOGIES)
        print(
            f"{r['index']:>3} {r['split']:5} {r['events']:>6} {s['withdrawals']:>5} {s['fraud']:>5} "
            f"{s['recall']:6.3f} {s['false_positive_rate']:6.4f}  {cells}",
            file=out,
        )
    for split in ("tune", "held"):
        part = [r for r in results if r["split"] == split]
        if not part:
            continue
        w = aggregate(part)
        cells = " ".join(
            _cell(w["typology"][t]["recall"], w["typology"][t]["fraud"]) if t in w["typology"] else _cell(None, 0)
            for t in TYPOLOGIES
        )
        print(
            f"worst {split:5} ({w['sets']:>2} sets)       {w['recall']:6.3f} {w['false_positive_rate']:6.4f}  {cells}",
            file=out,
        )
        p = w["pooled"]
        pooled_cells = " ".join(
            f"{p['typology'][t]:5.3f}    " if p["typology"].get(t) is not None else "    -    " for t in TYPOLOGIES
        )
        print(
            f"pooled {split:5} {p['fraud']:>5}/{p['legit']:<6}    {p['recall']:6.3f} "
            f"{p['false_positive_rate']:6.4f}  {pooled_cells}",
            file=out,
        )
        verdict = "targets met" if w["targets_met"] else "targets missed: " + "; ".join(w["failures"])
        print(f"  {split}: {verdict}", file=out)
    print(
        "columns: recall/fraud count per typology (" + ", ".join(f"{v}={k}" for k, v in SHORT.items()) + ")",
        file=out,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=40, help="parameter sets in the grid")
    parser.add_argument("--tune", type=int, default=10, help="the first N sets are for tuning, the rest held out")
    parser.add_argument("--grid-seed", type=int, default=7)
    parser.add_argument("--merchants", type=int, nargs=2, default=(300, 700), metavar=("MIN", "MAX"))
    parser.add_argument("--days", type=int, nargs=2, default=(28, 45), metavar=("MIN", "MAX"))
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (at most 2 on this machine)")
    parser.add_argument("--only", choices=("tune", "held"), help="run only one split")
    parser.add_argument("--set", type=int, nargs="*", dest="indices", help="run only these set indices")
    parser.add_argument("--json", help="write the per-set summaries and the worst cases here")
    parser.add_argument("--features-out", help="write every withdrawal's features and label here (JSON lines)")
    parser.add_argument("--ruleset")
    parser.add_argument("--model")
    parser.add_argument("--no-model", action="store_true")
    args = parser.parse_args(argv)
    if not (SHARED_RISK / "generate.py").is_file() or not (SHARED_RISK / "score.py").is_file():
        print(f"no shared risk benchmark at {SHARED_RISK}", file=sys.stderr)
        return 2
    sets = grid(args.sets, args.tune, args.grid_seed, tuple(args.merchants), tuple(args.days))
    if args.only:
        sets = [ps for ps in sets if ps.split == args.only]
    if args.indices:
        sets = [ps for ps in sets if ps.index in set(args.indices)]
    options = {
        "ruleset": args.ruleset,
        "model": args.model,
        "no_model": args.no_model,
        "features": bool(args.features_out),
    }
    started = time.perf_counter()
    results = run_sets(sets, options, max(1, min(2, args.jobs)))
    if args.features_out:
        with open(args.features_out, "w", encoding="utf-8") as f:
            for r in results:
                for row in r.pop("rows"):
                    f.write(json.dumps(row) + "\n")
    print_table(results)
    print(f"{len(results)} sets, {sum(r['events'] for r in results)} events in {time.perf_counter() - started:.0f} s")
    if args.json:
        doc = {
            "grid_seed": args.grid_seed,
            "sets": [{k: v for k, v in r.items()} for r in results],
            "worst": {split: aggregate([r for r in results if r["split"] == split]) for split in ("tune", "held")},
        }
        Path(args.json).write_text(json.dumps(doc, indent=1, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
