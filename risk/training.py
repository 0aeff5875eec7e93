"""Training the learned score from labelled outcomes, with a held-out report before any activation.

Labels: RiskLabel rows (confirmed fraud and review rejections are fraud; review approvals and withdrawals
paid without complaint are not), each joined with the full feature vector stored when the decision was made
(RiskDecisionLog). A withdrawal with any fraud label counts as fraud.

Held-out split: for database labels, a stable 25 % by a hash of the withdrawal id; for an offline event file,
the last 25 % of withdrawals in time (the honest split: the model never sees the future it is scored on).

Activation gate (``--activate``), on the held-out split at the artifact's threshold (0.5):
recall ≥ 0.80, false-positive rate ≤ 0.10, at least 10 fraud and 100 legit held-out examples. The score only
adds points through the ``model_*`` rules, so a model that passes still never decides alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from .engine import InMemoryStore, Model, RiskEngine, model_from_dict, train_trees
from .engine.model import report, train
from .models import ModelVersion, RiskLabel
from .services import risk_engine_reset

GATE = {"min_recall": 0.80, "max_fpr": 0.10, "min_fraud": 10, "min_legit": 100, "max_fpr_at_step_up": 0.01}
# risk-rules-4 steps up at a score of 0.2 (model_high): a candidate must keep the legit FPR there within budget.
STEP_UP_CUT = "at_0.2"


@dataclass
class TrainingSet:
    train_rows: list[dict[str, float]]
    train_labels: list[bool]
    held_rows: list[dict[str, float]]
    held_labels: list[bool]
    source: str


def _held_out(ref: str) -> bool:
    return int(hashlib.sha256(ref.encode()).hexdigest()[:8], 16) % 4 == 0


def training_set_from_labels() -> TrainingSet:
    verdict: dict[str, bool] = {}
    features: dict[str, dict[str, float]] = {}
    for ref, fraud, feats in RiskLabel.objects.exclude(features={}).values_list("withdrawal_ref", "fraud", "features"):
        verdict[ref] = verdict.get(ref, False) or fraud
        features[ref] = feats
    ts = TrainingSet([], [], [], [], source=f"{len(verdict)} labelled withdrawals in the database")
    for ref in sorted(verdict):
        rows, labels = (ts.held_rows, ts.held_labels) if _held_out(ref) else (ts.train_rows, ts.train_labels)
        rows.append(features[ref])
        labels.append(verdict[ref])
    return ts


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def training_set_from_events(events: Path, labels: Path) -> TrainingSet:
    """Replay an event file through the engine (in memory, without a model) to collect feature vectors."""
    truth = {r["withdrawal"]: bool(r["fraud"]) for r in _read_jsonl(labels)}
    engine = RiskEngine(InMemoryStore(), model=None)
    rows: list[dict[str, float]] = []
    ys: list[bool] = []
    for event in _read_jsonl(events):
        if event.get("type") == "withdrawal_requested":
            rows.append(engine.assess(event).features)
            ys.append(truth.get(event["withdrawal"], False))
        else:
            engine.observe(event)
    cut = int(len(rows) * 0.75)
    return TrainingSet(rows[:cut], ys[:cut], rows[cut:], ys[cut:], source=f"{events} ({len(rows)} withdrawals)")


def gate_check(held_report: dict[str, Any]) -> list[str]:
    """Reasons the report fails the activation gate (empty: it passes)."""
    at = held_report.get("at_0.5") or {}
    problems = []
    if held_report.get("fraud", 0) < GATE["min_fraud"]:
        problems.append(f"only {held_report.get('fraud', 0)} fraud examples held out (need {GATE['min_fraud']})")
    if held_report.get("n", 0) - held_report.get("fraud", 0) < GATE["min_legit"]:
        problems.append(f"fewer than {GATE['min_legit']} legit examples held out")
    if (at.get("recall") or 0) < GATE["min_recall"]:
        problems.append(f"held-out recall {at.get('recall')} < {GATE['min_recall']}")
    step_up = held_report.get(STEP_UP_CUT) or {}
    if step_up.get("fpr") is None or step_up["fpr"] > GATE["max_fpr_at_step_up"]:
        problems.append(f"held-out false-positive rate at 0.2 {step_up.get('fpr')} > {GATE['max_fpr_at_step_up']}")
    if at.get("fpr") is None or at["fpr"] > GATE["max_fpr"]:
        problems.append(f"held-out false-positive rate {at.get('fpr')} > {GATE['max_fpr']}")
    return problems


def model_train(*, data: TrainingSet, version: str, kind: str = "trees") -> tuple[ModelVersion, list[str]]:
    """Fit on the training part (gradient-boosted trees, or ``kind="lr"`` a logistic regression), report on the
    held-out part, store a candidate version."""
    if len(set(data.train_labels)) < 2:
        raise ValueError("the training part needs both fraud and legit examples")
    artifact: Model
    if kind == "lr":
        artifact = train(data.train_rows, data.train_labels, version=version)
    elif kind == "trees":
        artifact = train_trees(data.train_rows, data.train_labels, version=version, min_samples_leaf=5)
    else:
        raise ValueError(f"unknown model kind {kind!r} (lr or trees)")
    held = report(artifact, data.held_rows, data.held_labels) if data.held_rows else {"n": 0, "fraud": 0}
    problems = gate_check(held)
    metrics = {
        "held_out": held,
        "train": {"n": len(data.train_labels), "fraud": sum(data.train_labels)},
        "source": data.source,
        "gate": GATE,
        "gate_problems": problems,
    }
    artifact = model_from_dict({**artifact.to_dict(), "metrics": metrics})
    row = ModelVersion.objects.create(
        version=version, artifact=artifact.to_dict(), metrics=metrics, trained_on=data.source[:255]
    )
    return row, problems


def model_activate(*, version: str) -> ModelVersion:
    with transaction.atomic():
        row = ModelVersion.objects.select_for_update().get(version=version)
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exclude(pk=row.pk).update(
            status=ModelVersion.Status.RETIRED
        )
        row.status = ModelVersion.Status.ACTIVE
        row.save(update_fields=["status"])
    risk_engine_reset()
    return row
