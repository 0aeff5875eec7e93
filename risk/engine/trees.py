"""A learned fraud score from gradient-boosted trees, shipped as a JSON artifact and scored in pure Python.

Training uses scikit-learn's ``HistGradientBoostingClassifier`` on the engine's relative features (ratios and
counts against the merchant's own history, its peers and the platform's traffic: no amounts in yuan, so
the score does not learn one marketplace's price level). The artifact keeps, per tree, its nodes as
``[feature index, threshold, left, right, value, expected]`` (a leaf has feature index -1), so scoring needs
neither numpy nor scikit-learn, and no pickle.

Explanation: every decision path is split into per-feature contributions to the log-odds (Saabas): going
from a node to its child adds ``expected(child) − expected(node)`` to the node's feature, where ``expected``
is the training-weighted mean of the leaves below. The contributions and the bias add up to the score's
log-odds exactly, so the reviewer sees which features pushed the score and by how much.

Reproducible: ``scripts/risk_tune.py train-trees`` on the harness's tuning sets (README, Risk control).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

KIND = "gradient_boosted_trees"
EXCLUDED = frozenset({"model_score"})


def model_features(names: Sequence[str]) -> tuple[str, ...]:
    """The features the trees may read: every engine feature but absolute amounts (``*_yuan``) and the score."""
    return tuple(sorted(n for n in names if n not in EXCLUDED and not n.endswith("_yuan")))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


@dataclass(frozen=True)
class TreeModelArtifact:
    version: str
    features: tuple[str, ...]
    baseline: float
    trees: tuple[tuple[tuple[float, ...], ...], ...]
    threshold: float = 0.5
    metrics: dict[str, Any] = field(default_factory=dict)

    def _raw(self, x: Sequence[float]) -> float:
        z = self.baseline
        for nodes in self.trees:
            i = 0
            while nodes[i][0] >= 0:
                node = nodes[i]
                i = int(node[2]) if x[int(node[0])] <= node[1] else int(node[3])
            z += nodes[i][4]
        return z

    def _vector(self, features: Mapping[str, float]) -> list[float]:
        return [float(features.get(name, 0.0)) for name in self.features]

    def score(self, features: Mapping[str, float]) -> float:
        return _sigmoid(self._raw(self._vector(features)))

    def explain(self, features: Mapping[str, float], top: int = 5) -> tuple[float, dict[str, float]]:
        """The score and the features that pushed it most (their contributions to the log-odds)."""
        x = self._vector(features)
        contributions = [0.0] * len(self.features)
        z = self.baseline
        for nodes in self.trees:
            i = 0
            z += nodes[0][5]
            while nodes[i][0] >= 0:
                node = nodes[i]
                child = int(node[2]) if x[int(node[0])] <= node[1] else int(node[3])
                contributions[int(node[0])] += nodes[child][5] - node[5]
                i = child
            z += nodes[i][5] - nodes[0][5]
        ranked = sorted(zip(self.features, contributions, strict=True), key=lambda t: -abs(t[1]))[:top]
        return round(_sigmoid(z), 5), {name: round(v, 3) for name, v in ranked if v}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = KIND
        data["trees"] = [[list(node) for node in tree] for tree in self.trees]
        return data

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TreeModelArtifact:
        if data.get("kind") != KIND:
            raise ValueError(f"not a {KIND} artifact: {data.get('kind')!r}")
        return cls(
            version=str(data["version"]),
            features=tuple(data["features"]),
            baseline=float(data["baseline"]),
            trees=tuple(tuple(tuple(float(v) for v in node) for node in tree) for tree in data["trees"]),
            threshold=float(data.get("threshold", 0.5)),
            metrics=dict(data.get("metrics") or {}),
        )


def _export_tree(nodes: Any) -> tuple[tuple[float, ...], ...]:
    """One scikit-learn TreePredictor's node array → ``(feature, threshold, left, right, value, expected)``."""
    n = len(nodes)
    expected = [0.0] * n
    weight = [0.0] * n

    def fill(i: int) -> None:
        if nodes[i]["is_leaf"]:
            expected[i] = float(nodes[i]["value"])
            weight[i] = max(1.0, float(nodes[i]["count"]))
            return
        left, right = int(nodes[i]["left"]), int(nodes[i]["right"])
        fill(left)
        fill(right)
        weight[i] = weight[left] + weight[right]
        expected[i] = (expected[left] * weight[left] + expected[right] * weight[right]) / weight[i]

    fill(0)
    out = []
    for i in range(n):
        node = nodes[i]
        if node["is_leaf"]:
            out.append((-1.0, 0.0, 0.0, 0.0, round(float(node["value"]), 6), round(expected[i], 6)))
        else:
            out.append(
                (
                    float(node["feature_idx"]),
                    float(node["num_threshold"]),
                    float(node["left"]),
                    float(node["right"]),
                    0.0,
                    round(expected[i], 6),
                )
            )
    return tuple(out)


def train_trees(
    rows: Sequence[Mapping[str, float]],
    labels: Sequence[bool | int],
    *,
    features: Sequence[str] | None = None,
    version: str = "gbt-1",
    max_iter: int = 200,
    max_leaf_nodes: int = 15,
    learning_rate: float = 0.1,
    min_samples_leaf: int = 40,
    l2_regularization: float = 1.0,
    seed: int = 0,
) -> TreeModelArtifact:
    """Fit histogram gradient boosting (log-loss, so the score is a calibrated probability) on feature rows."""
    # Only training needs numpy and scikit-learn; the engine scores from the JSON artifact without them.
    import numpy as np  # noqa: PLC0415
    from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: PLC0415

    names = tuple(features) if features is not None else model_features(sorted({k for r in rows for k in r}))
    x = np.array([[float(r.get(name, 0.0)) for name in names] for r in rows], dtype=float)
    y = np.array([int(bool(v)) for v in labels])
    if len(set(y.tolist())) < 2:
        raise ValueError("need both fraud and legit examples")
    fitted = HistGradientBoostingClassifier(
        max_iter=max_iter,
        max_leaf_nodes=max_leaf_nodes,
        learning_rate=learning_rate,
        min_samples_leaf=min_samples_leaf,
        l2_regularization=l2_regularization,
        early_stopping=False,
        random_state=seed,
    )
    fitted.fit(x, y)
    trees = tuple(_export_tree(predictors[0].nodes) for predictors in fitted._predictors)
    artifact = TreeModelArtifact(
        version=version,
        features=names,
        baseline=round(float(np.ravel(fitted._baseline_prediction)[0]), 6),
        trees=trees,
    )
    # The pure-Python scorer must agree with scikit-learn (same trees, same thresholds).
    sample = x[: min(len(x), 200)]
    expected = fitted.predict_proba(sample)[:, 1]
    got = [artifact.score(dict(zip(names, row, strict=True))) for row in sample.tolist()]
    if max(abs(a - b) for a, b in zip(expected.tolist(), got, strict=True)) > 1e-4:
        raise RuntimeError("exported trees disagree with scikit-learn")
    return artifact
