"""One name per metric: `accuracy`, `f1_score`, `auc_roc`, whatever scikit-learn, MLflow or DVC call them.

A gate file says `auc_roc`; a DVC metrics file may say `roc_auc`, MLflow's evaluator
`roc_auc`, scikit-learn `roc_auc_score`, and the sample project logs `test_auc_roc` to its
run. `canonical` maps every spelling to one name so the gates can find the metric
wherever it was recorded, and `higher_is_better` says which way a regression points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = [
    "CLASSIFICATION_METRICS",
    "FAIRNESS_METRICS",
    "canonical",
    "flatten_dotted",
    "flatten_numbers",
    "higher_is_better",
    "lookup",
]

_ALIASES: dict[str, tuple[str, ...]] = {
    "accuracy": ("acc", "accuracy_score"),
    "balanced_accuracy": ("balanced_accuracy_score", "balanced_acc"),
    "f1_score": ("f1", "f1score", "f_1", "f1_macro"),
    "auc_roc": ("roc_auc", "auc", "roc_auc_score", "rocauc", "auroc", "auc_score"),
    "precision": ("precision_score", "ppv"),
    "recall": ("recall_score", "sensitivity", "tpr", "true_positive_rate"),
    "log_loss": ("logloss", "cross_entropy", "binary_crossentropy"),
    "selection_rate": ("positive_rate",),
    "false_positive_rate": ("fpr",),
    "mse": ("mean_squared_error",),
    "rmse": ("root_mean_squared_error",),
    "mae": ("mean_absolute_error",),
    "r2": ("r2_score", "r_squared"),
}

_BY_SPELLING: dict[str, str] = {
    spelling: name for name, spellings in _ALIASES.items() for spelling in (name, *spellings)
}

_PREFIXES = ("test_", "test.", "test/", "test-", "eval_", "eval.", "eval/", "evaluation.", "metrics.")
"""Prefixes under which projects record held-out metrics (never `val_`: validation is not test)."""

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1_score", "auc_roc", "precision", "recall", "log_loss")
"""The metrics mlci computes itself from a classifier and the test split."""

FAIRNESS_METRICS = ("accuracy", "f1_score", "precision", "recall", "auc_roc", "selection_rate", "false_positive_rate")
"""Per-group metrics the fairness gate can compare (`recall` is equal opportunity, `selection_rate`
demographic parity)."""

_LOWER_IS_BETTER = frozenset({"log_loss", "mse", "rmse", "mae", "false_positive_rate", "loss"})


def canonical(name: str) -> str:
    """The one name of a metric: `roc_auc` -> `auc_roc`, `F1-Score` -> `f1_score`; unknown names unchanged."""
    plain = name.strip().lower().replace("-", "_").replace(" ", "_")
    return _BY_SPELLING.get(plain, plain)


def _strip_prefix(key: str) -> str | None:
    lowered = key.lower()
    for prefix in _PREFIXES:
        if lowered.startswith(prefix):
            return key[len(prefix) :]
    return None


def lookup(name: str, recorded: dict[str, float]) -> tuple[str, float] | None:
    """Find metric `name` among recorded metrics: exact key, then any spelling, then under a test prefix.

    Returns the recorded key and its value, or None. The exact key wins so that a project
    recording both `auc` and `roc_auc` gets the one its gate file names.
    """
    if name in recorded:
        return name, recorded[name]
    wanted = canonical(name)
    for key, value in recorded.items():
        if canonical(key) == wanted:
            return key, value
    for key, value in recorded.items():
        stripped = _strip_prefix(key)
        if stripped is not None and canonical(stripped) == wanted:
            return key, value
    return None


def higher_is_better(name: str, *, has_min: bool | None = None) -> bool:
    """Which way is better for `name`; for unknown metrics a `min` bound says higher, a lone `max` lower."""
    wanted = canonical(name)
    if wanted in _LOWER_IS_BETTER or wanted.endswith("_loss") or wanted.endswith("_error"):
        return False
    if wanted in _BY_SPELLING:
        return True
    return has_min is not False


T = TypeVar("T")


def flatten_dotted(data: Mapping[str, Any], leaf: Callable[[Any], T | None], prefix: str = "") -> dict[str, T]:
    """A nested mapping as dotted keys (`train.lr`), each leaf turned by `leaf`; a leaf it maps to None is left out."""
    out: dict[str, T] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_dotted(value, leaf, dotted + "."))
        elif (kept := leaf(value)) is not None:
            out[dotted] = kept
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def flatten_numbers(data: Mapping[str, Any]) -> dict[str, float]:
    """Nested metrics as dotted keys; booleans and strings are not metrics and are left out."""
    return flatten_dotted(data, _number)
