"""Withdrawal risk engine: state, features, rules as data, a learned score, decisions with explanations.

Pure Python (no Django); the Django side (``risk/services.py``) wires it to a database-backed store.
"""

from .engine import RiskEngine
from .features import DEFAULT_FEATURE_CONFIG, FeatureConfig, compute_features
from .model import ModelArtifact, load_default_model, train
from .rules import DEFAULT_RULESET, Rule, RuleSet, evaluate, evaluate_shadow, ruleset_from_dict
from .state import InMemoryStore, StateStore

__all__ = [
    "DEFAULT_FEATURE_CONFIG",
    "DEFAULT_RULESET",
    "FeatureConfig",
    "InMemoryStore",
    "ModelArtifact",
    "RiskEngine",
    "Rule",
    "RuleSet",
    "StateStore",
    "compute_features",
    "evaluate",
    "evaluate_shadow",
    "load_default_model",
    "ruleset_from_dict",
    "train",
]
