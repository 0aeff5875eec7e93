"""A learned fraud score: logistic regression over the feature vector, shipped as a small JSON artifact.

Training uses scikit-learn; scoring does not. The artifact holds, per feature, the transform (signed log1p),
the standardisation (mean, scale) and the coefficient, so a decision costs one dot product and the
explanation can show each feature's contribution to the log-odds. No pickle.

``scripts/risk_tune.py train --seeds 21 22 23 --out lr.json`` trains one from generated seeds (never the
sample's seeds 1 or 2). Since risk-rules-4 the shipped ``default_model.json`` is the gradient-boosted
``gbt-2`` (``risk/engine/trees.py``); ``model_from_dict`` / ``load_model`` read either kind. The score is an
input of the rules (``model_*`` rules add points or ask a reviewer); it never blocks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .trees import KIND as TREES_KIND
from .trees import TreeModelArtifact

DEFAULT_MODEL_PATH = Path(__file__).with_name("default_model.json")

# Features the model reads. Identity checks and feedback flags are left to the rules: they are exact.
MODEL_FEATURES: tuple[str, ...] = (
    "amount_yuan",
    "instant",
    "account_age_h",
    "drain_share",
    "withdrawn_share",
    "first_credit_age_h",
    "buyers_n",
    "credits_per_buyer",
    "exclusive_buyer_share",
    "new_buyer_share_life",
    "credits_6h_n",
    "credits_24h_yuan",
    "recent_new_buyer_share",
    "recent_unseen_buyer_share",
    "recent_exclusive_share",
    "recent_new_buyers_n",
    "new_buyers_24h_n",
    "new_buyer_share_24h",
    "history_days",
    "credit_surge_24h",
    "credit_count_surge_6h",
    "recent_max_credit_vs_median",
    "withdrawals_n",
    "amount_vs_median",
    "amount_vs_p90",
    "amount_vs_daily_credit",
    "last_wd_age_h",
    "wd_1h_n",
    "wd_burst_n",
    "burst_excess",
    "near_threshold",
    "near_threshold_prior_14d",
    "device_age_h",
    "ip_age_h",
    "net_age_h",
    "device_other_merchants",
    "device_registrations",
    "ip_other_active",
    "ip_newcomers",
    "net_newcomers",
    "card_age_h",
    "card_name_mismatch",
    "card_is_additional",
    "card_bound_on_new_device",
    "phone_change_age_h",
    "dormant_gap_d",
    "device_new_since_reactivation",
)


def signed_log1p(x: float) -> float:
    return math.copysign(math.log1p(abs(x)), x)


@dataclass(frozen=True)
class ModelArtifact:
    version: str
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float = 0.5  # operating point used for the report
    metrics: dict[str, Any] = field(default_factory=dict)

    def _terms(self, features: Mapping[str, float]) -> list[float]:
        return [
            c * (signed_log1p(float(features.get(name, 0.0))) - mu) / sd
            for name, mu, sd, c in zip(self.features, self.mean, self.scale, self.coef, strict=True)
        ]

    def score(self, features: Mapping[str, float]) -> float:
        """Probability-like fraud score in [0, 1]."""
        z = self.intercept + sum(self._terms(features))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def explain(self, features: Mapping[str, float], top: int = 5) -> tuple[float, dict[str, float]]:
        """The score and the features that pushed it most (their log-odds contributions)."""
        terms = self._terms(features)
        z = self.intercept + sum(terms)
        score = 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))
        ranked = sorted(zip(self.features, terms, strict=True), key=lambda t: -abs(t[1]))[:top]
        return round(score, 5), {name: round(v, 3) for name, v in ranked}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = "logistic_regression"
        return data

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelArtifact:
        if data.get("kind", "logistic_regression") != "logistic_regression":
            raise ValueError(f"unsupported model kind {data.get('kind')!r}")
        return cls(
            version=str(data["version"]),
            features=tuple(data["features"]),
            mean=tuple(float(x) for x in data["mean"]),
            scale=tuple(float(x) for x in data["scale"]),
            coef=tuple(float(x) for x in data["coef"]),
            intercept=float(data["intercept"]),
            threshold=float(data.get("threshold", 0.5)),
            metrics=dict(data.get("metrics") or {}),
        )

    @classmethod
    def load(cls, path: str | Path) -> ModelArtifact:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


Model = ModelArtifact | TreeModelArtifact


def model_from_dict(data: Mapping[str, Any]) -> Model:
    """An artifact of either kind: logistic regression (``lr-*``) or gradient-boosted trees (``gbt-*``)."""
    if data.get("kind") == TREES_KIND:
        return TreeModelArtifact.from_dict(data)
    return ModelArtifact.from_dict(data)


def load_model(path: str | Path) -> Model:
    return model_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def load_default_model() -> Model | None:
    """The shipped artifact, or None if it has not been trained yet."""
    if not DEFAULT_MODEL_PATH.exists():
        return None
    return load_model(DEFAULT_MODEL_PATH)


def _matrix(rows: Sequence[Mapping[str, float]], features: Sequence[str]) -> Any:
    import numpy as np  # noqa: PLC0415  (only to train: scoring reads the JSON artifact, without numpy)

    return np.array([[signed_log1p(float(r.get(name, 0.0))) for name in features] for r in rows], dtype=float)


def train(
    rows: Sequence[Mapping[str, float]],
    labels: Sequence[bool | int],
    *,
    features: Sequence[str] = MODEL_FEATURES,
    version: str = "lr-1",
    c: float = 0.3,
    threshold: float = 0.5,
) -> ModelArtifact:
    """Fit a class-balanced, L2-regularised logistic regression on feature rows."""
    # Only training needs numpy and scikit-learn; the engine scores from the JSON artifact without them.
    import numpy as np  # noqa: PLC0415
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    x = _matrix(rows, features)
    y = np.array([int(bool(v)) for v in labels])
    if len(set(y.tolist())) < 2:
        raise ValueError("need both fraud and legit examples")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    fitted = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    fitted.fit((x - mean) / scale, y)
    return ModelArtifact(
        version=version,
        features=tuple(features),
        mean=tuple(round(float(v), 6) for v in mean),
        scale=tuple(round(float(v), 6) for v in scale),
        coef=tuple(round(float(v), 6) for v in fitted.coef_[0]),
        intercept=round(float(fitted.intercept_[0]), 6),
        threshold=threshold,
    )


def report(artifact: Model, rows: Sequence[Mapping[str, float]], labels: Sequence[bool | int]) -> dict[str, Any]:
    """Precision, recall and false-positive rate at the artifact's threshold (and a few others)."""
    scores = [artifact.score(r) for r in rows]
    truth = [bool(v) for v in labels]
    out: dict[str, Any] = {"n": len(truth), "fraud": sum(truth)}
    for cut in sorted({artifact.threshold, 0.2, 0.5, 0.9, 0.98}):
        tp = sum(1 for s, t in zip(scores, truth, strict=True) if s >= cut and t)
        fp = sum(1 for s, t in zip(scores, truth, strict=True) if s >= cut and not t)
        n_pos, n_neg = sum(truth), len(truth) - sum(truth)
        out[f"at_{cut:g}"] = {
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / n_pos, 4) if n_pos else None,
            "fpr": round(fp / n_neg, 5) if n_neg else None,
        }
    return out
