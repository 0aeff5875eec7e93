#!/usr/bin/env python3
"""Replay a benchmark event stream through the risk engine, score it, and train the model artifact.

    .venv/bin/python scripts/risk_tune.py replay EVENTS.jsonl --out DECISIONS.jsonl [--labels LABELS.jsonl]
        [--no-model | --model PATH] [--ruleset RULES.json] [--shadow-ruleset RULES.json]
        [--features-out FEATURES.jsonl]
    python3 ../shared/risk/score.py LABELS.jsonl DECISIONS.jsonl

    .venv/bin/python scripts/risk_tune.py train --seeds 21 22 23 --out risk/engine/default_model.json

``replay`` follows the replay rule (events in file order, each withdrawal decided from the events before it)
over an InMemoryStore, writes one ``{"withdrawal","decision","score","reasons"}`` line per withdrawal and
reports decisions/sec and per-decision latency. With ``--labels`` it also prints the scorer's summary.

``train`` generates data sets with ``../shared/risk/generate.py`` into a temporary directory, replays each
without a model to collect feature rows, trains on all but the last seed, reports precision/recall on the last
(held out), then refits on all seeds and writes the artifact.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_RISK = REPO.parent / "shared" / "risk"
sys.path.insert(0, str(REPO))

from risk.engine import InMemoryStore, ModelArtifact, RiskEngine, load_model, ruleset_from_dict  # noqa: E402
from risk.engine.model import report, train  # noqa: E402
from risk.engine.trees import train_trees  # noqa: E402


def load_scorer() -> Any:
    spec = importlib.util.spec_from_file_location("risk_score", SHARED_RISK / "score.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {SHARED_RISK / 'score.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def replay(
    events_path: Path,
    engine: RiskEngine,
    *,
    out: Path | None = None,
    features_out: list[dict] | None = None,
) -> dict[str, Any]:
    """Run every event through the engine; returns decisions and timing."""
    decisions: list[dict] = []
    latencies: list[float] = []
    started = time.perf_counter()
    with open(events_path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            event = json.loads(line)
            if event.get("type") != "withdrawal_requested":
                engine.observe(event)
                continue
            t0 = time.perf_counter()
            decision = engine.decide(event)
            latencies.append(time.perf_counter() - t0)
            decisions.append(
                {
                    "withdrawal": event["withdrawal"],
                    "decision": decision.outcome,
                    "score": decision.score,
                    "reasons": decision.reasons,
                }
            )
            if features_out is not None:
                features_out.append({"withdrawal": event["withdrawal"], **decision.explanation["all_features"]})
    elapsed = time.perf_counter() - started
    if out is not None:
        with open(out, "w", encoding="utf-8") as f:
            for d in decisions:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    latencies.sort()
    n = len(latencies)
    return {
        "decisions": decisions,
        "seconds": elapsed,
        "decisions_per_sec": n / sum(latencies) if n else 0.0,
        "p50_ms": 1000 * latencies[n // 2] if n else 0.0,
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else 0.0,
    }


def make_engine(args: argparse.Namespace, *, explain_all: bool = False) -> RiskEngine:
    kwargs: dict[str, Any] = {}
    if getattr(args, "ruleset", None):
        kwargs["ruleset"] = ruleset_from_dict(json.loads(Path(args.ruleset).read_text(encoding="utf-8")))
    if getattr(args, "shadow_ruleset", None):
        kwargs["shadow_ruleset"] = ruleset_from_dict(json.loads(Path(args.shadow_ruleset).read_text(encoding="utf-8")))
    if getattr(args, "no_model", False):
        kwargs["model"] = None
    elif getattr(args, "model", None):
        kwargs["model"] = load_model(args.model)
    engine = RiskEngine(InMemoryStore(), **kwargs)
    engine.explain_all_features = explain_all
    return engine


def cmd_replay(args: argparse.Namespace) -> int:
    engine = make_engine(args, explain_all=bool(args.features_out))
    rows: list[dict] | None = [] if args.features_out else None
    result = replay(Path(args.events), engine, out=Path(args.out), features_out=rows)
    n = len(result["decisions"])
    print(
        f"{n} decisions in {result['seconds']:.1f}s replay; decide() {result['decisions_per_sec']:.0f}/s, "
        f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
    )
    if rows is not None:
        with open(args.features_out, "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    if args.labels:
        scorer = load_scorer()
        summary = scorer.score(read_jsonl(Path(args.labels)), result["decisions"])
        if args.json:
            print(json.dumps(summary))
        else:
            scorer.print_report(summary)
    return 0


def collect(events: Path, labels: Path) -> tuple[list[dict], list[bool]]:
    engine = RiskEngine(InMemoryStore(), model=None)
    engine.explain_all_features = True
    rows: list[dict] = []
    replay(events, engine, features_out=rows)
    truth = {r["withdrawal"]: bool(r["fraud"]) for r in read_jsonl(labels)}
    return rows, [truth[r["withdrawal"]] for r in rows]


def cmd_train(args: argparse.Namespace) -> int:
    seeds: list[int] = args.seeds
    if any(s in (1, 2) for s in seeds):
        raise SystemExit("seeds 1 and 2 are the shared samples; train on others")
    if len(seeds) < 2:
        raise SystemExit("need at least two seeds (the last is held out for the report)")
    data: list[tuple[list[dict], list[bool]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            out = Path(tmp) / f"seed{seed}"
            cmd = [
                sys.executable,
                str(SHARED_RISK / "generate.py"),
                "--out-dir",
                str(out),
                "--seed",
                str(seed),
            ]
            if args.merchants:
                cmd += ["--merchants", str(args.merchants)]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            data.append(collect(out / "events.jsonl", out / "labels.jsonl"))
            print(f"seed {seed}: {len(data[-1][0])} withdrawals, {sum(data[-1][1])} fraud")
    train_rows = [r for rows, _ in data[:-1] for r in rows]
    train_labels = [y for _, labels in data[:-1] for y in labels]
    held_rows, held_labels = data[-1]
    candidate = train(train_rows, train_labels, version=args.version)
    held_out = report(candidate, held_rows, held_labels)
    print("held-out seed", seeds[-1], json.dumps(held_out))
    final = train(train_rows + held_rows, train_labels + held_labels, version=args.version)
    final = ModelArtifact.from_dict(
        {**final.to_dict(), "metrics": {"seeds": seeds, "held_out_seed": seeds[-1], "held_out": held_out}}
    )
    final.save(args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_train_trees(args: argparse.Namespace) -> int:
    """Train the gradient-boosted score on the harness's tuning sets (``risk_harness.py --features-out``)."""
    rows: list[dict] = []
    labels: list[bool] = []
    sets: set[tuple[str, int]] = set()
    for path in args.rows:
        for record in read_jsonl(Path(path)):
            if record.get("split") != "tune":
                raise SystemExit(f"{path}: a row of a held-out set ({record.get('set')}); train on tune sets only")
            rows.append(record["features"])
            labels.append(bool(record["fraud"]))
            sets.add((path, int(record["set"])))
    print(f"{len(rows)} withdrawals ({sum(labels)} fraud) from {len(sets)} tuning sets")
    artifact = train_trees(rows, labels, version=args.version, max_iter=args.trees, max_leaf_nodes=args.leaves)
    metrics = {"trained_on": {"rows": len(rows), "fraud": sum(labels), "tuning_sets": len(sets),
                              "files": [Path(p).name for p in args.rows]}}  # fmt: skip
    final = artifact.__class__(**{**artifact.__dict__, "metrics": metrics})
    final.save(args.out)
    print(f"wrote {args.out}: {len(final.trees)} trees over {len(final.features)} features")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("replay", help="replay events and write decisions")
    p.add_argument("events")
    p.add_argument("--out", required=True)
    p.add_argument("--labels")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-model", action="store_true")
    p.add_argument("--model")
    p.add_argument("--ruleset")
    p.add_argument("--shadow-ruleset")
    p.add_argument("--features-out")
    p.set_defaults(func=cmd_replay)
    t = sub.add_parser("train", help="generate data, train and write the model artifact")
    t.add_argument("--seeds", type=int, nargs="+", default=[21, 22, 23])
    t.add_argument("--merchants", type=int)
    t.add_argument("--version", default="lr-1")
    t.add_argument("--out", required=True, help="where to write the LR artifact (the shipped model is gbt-2)")
    t.set_defaults(func=cmd_train)
    g = sub.add_parser("train-trees", help="train the gradient-boosted score on harness tuning rows")
    g.add_argument("rows", nargs="+", help="risk_harness.py --features-out files (tune sets only)")
    g.add_argument("--version", default="gbt-1")
    g.add_argument("--trees", type=int, default=200)
    g.add_argument("--leaves", type=int, default=15)
    g.add_argument("--out", default=str(REPO / "risk" / "engine" / "default_model.json"))
    g.set_defaults(func=cmd_train_trees)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
