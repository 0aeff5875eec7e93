"""Withdrawal risk engine: state, features, rules as data, a learned score, decisions with explanations.

Pure Python (no Django); the Django side (``risk/services.py``) wires it to a database-backed store.
"""

from .engine import RiskEngine
from .features import DEFAULT_FEATURE_CONFIG, FeatureConfig, compute_features
from .model import Model, ModelArtifact, load_default_model, load_model, model_from_dict, train
from .rules import DEFAULT_RULESET, Rule, RuleSet, evaluate, evaluate_shadow, ruleset_from_dict
from .state import InMemoryStore, StateStore
from .trees import TreeModelArtifact, train_trees

__all__ = [
    "DEFAULT_FEATURE_CONFIG",
    "DEFAULT_RULESET",
    "FeatureConfig",
    "InMemoryStore",
    "Model",
    "ModelArtifact",
    "RiskEngine",
    "Rule",
    "RuleSet",
    "StateStore",
    "TreeModelArtifact",
    "compute_features",
    "evaluate",
    "evaluate_shadow",
    "load_default_model",
    "load_model",
    "model_from_dict",
    "ruleset_from_dict",
    "train",
    "train_trees",
]
