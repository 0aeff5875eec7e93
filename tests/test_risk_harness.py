"""The robustness harness (scripts/risk_harness.py) on two tiny parameter sets: one tune, one held out."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_RISK = REPO.parent / "shared" / "risk"
pytestmark = pytest.mark.skipif(
    not (SHARED_RISK / "generate.py").is_file() or not (SHARED_RISK / "score.py").is_file(),
    reason=f"the shared risk benchmark (generate.py, score.py) is not at {SHARED_RISK}",
)


def _harness():
    spec = importlib.util.spec_from_file_location("risk_harness", REPO / "scripts" / "risk_harness.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["risk_harness"] = module  # its dataclass needs its module registered
    spec.loader.exec_module(module)
    return module


def test_the_grid_splits_whole_parameter_sets_and_is_reproducible():
    harness = _harness()
    a = harness.grid(12, 4, 3, (40, 60), (20, 24))
    b = harness.grid(12, 4, 3, (40, 60), (20, 24))
    assert [ps.params for ps in a] == [ps.params for ps in b]
    assert [ps.split for ps in a] == ["tune"] * 4 + ["held"] * 8
    assert len({json.dumps(ps.params, sort_keys=True) for ps in a}) == 12  # each set its own numbers
    assert all(ps.seed not in (1, 2) for ps in a)  # never the shared samples' seeds


def test_every_drawn_key_exists_in_the_generators_defaults():
    harness = _harness()
    spec = importlib.util.spec_from_file_location("shared_generate", SHARED_RISK / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    sys.modules["shared_generate"] = generate
    spec.loader.exec_module(generate)
    rng = random.Random(5)
    for _ in range(20):
        generate.deep_merge(generate.DEFAULT_PARAMS, harness.draw_params(rng, (40, 60), (20, 24)))  # raises if not


def test_two_tiny_sets_replay_score_and_print_the_worst_case(tmp_path, capsys):
    harness = _harness()
    out = tmp_path / "harness.json"
    rows = tmp_path / "rows.jsonl"
    code = harness.main(["--sets", "2", "--tune", "1", "--merchants", "40", "50", "--days", "20", "21",
                         "--jobs", "1", "--json", str(out), "--features-out", str(rows)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "worst tune" in printed and "worst held" in printed and "pooled held" in printed
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [s["split"] for s in doc["sets"]] == ["tune", "held"]
    for s in doc["sets"]:
        summary = s["summary"]
        assert summary["withdrawals"] > 0 and summary["fraud"] > 0
        assert summary["missing_decisions"] == 0 and summary["unknown_ids"] == 0
    assert set(doc["worst"]) == {"tune", "held"}
    assert doc["worst"]["held"]["sets"] == 1
    lines = [json.loads(line) for line in rows.read_text(encoding="utf-8").splitlines()]
    assert {r["split"] for r in lines} == {"tune", "held"}
    assert any(r["fraud"] for r in lines) and "amount_vs_usual" in lines[0]["features"]
