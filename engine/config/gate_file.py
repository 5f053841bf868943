"""Parse `model_gates.yaml` into typed gate specs, strictly, with file and line on every error.

The format is the one the project starts from (see design.md):

    performance: {accuracy: {min: 0.92}, f1_score: {min: 0.88}, auc_roc: {min: 0.95}}
    regression: {max_degradation: 0.01}
    latency: {p50_ms: 10, p95_ms: 30, p99_ms: 50}
    size: {max_mb: 50}
    fairness: {max_disparity: 0.05, protected_attributes: [gender, age_group]}
    behavioral: {test_cases: tests/critical_cases.csv, min_pass_rate: 1.0}

`confidence` (e.g. 0.95) on a performance metric or on `regression` makes that gate decide on
the metric's bootstrap interval instead of its point estimate (see `gates.intervals`).

Optional keys, for projects whose layout mlci cannot read on its own:
`fairness.metric` (default accuracy), `fairness.min_group_size` (default 30: a smaller group
fails the gate, its figure is noise), and a top-level
`evaluation: {model: models/model, test_data: data/prepared/test.csv, label: default, positive_label: 1}`
(`positive_label`: the class that selection rate, precision, recall and F1 count as positive;
default: the model's second class, as scikit-learn's `classes_` orders them, or 1 for 0/1 labels).

Evaluating the gates is `gates`' job; this module only says what they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.engine.config.metric_names import FAIRNESS_METRICS, canonical
from mlci.engine.config.yaml_nodes import Node, load_yaml, type_name

__all__ = [
    "BehavioralGate",
    "EvaluationSpec",
    "FairnessGate",
    "GateSpec",
    "LatencyGate",
    "MetricThreshold",
    "RegressionGate",
    "SizeGate",
    "load_gate_spec",
]

UNIT_INTERVAL_METRICS = frozenset(
    {"accuracy", "f1_score", "f1", "auc_roc", "roc_auc", "precision", "recall", "balanced_accuracy"}
)
"""Metrics that live in [0, 1]; a threshold outside that range can never be met."""


@dataclass(frozen=True)
class MetricThreshold:
    """A bound on one performance metric."""

    metric: str
    min: float | None = None
    max: float | None = None
    confidence: float | None = None
    """Set: the gate passes only when the metric's whole bootstrap interval at this level meets the bound."""


@dataclass(frozen=True)
class RegressionGate:
    max_degradation: float
    """How much worse (absolute) than the baseline each performance metric may be."""
    confidence: float | None = None
    """Set: the gate passes only when the whole interval of (candidate - baseline), paired on the same rows,
    at this level lies within `max_degradation`; unset, the point estimate decides."""


@dataclass(frozen=True)
class LatencyGate:
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True)
class SizeGate:
    max_mb: float


@dataclass(frozen=True)
class FairnessGate:
    max_disparity: float
    protected_attributes: tuple[str, ...]
    metric: str = "accuracy"
    """The metric whose spread across an attribute's groups is the disparity."""
    min_group_size: int = 30
    """Rows a group needs for its figure to count; a smaller group fails the gate (its figure is noise)."""


@dataclass(frozen=True)
class BehavioralGate:
    test_cases: str
    """Path of the CSV of cases, relative to the project root."""
    min_pass_rate: float = 1.0


@dataclass(frozen=True)
class EvaluationSpec:
    """Where the gates find the candidate model, the test split and its label; None means inferred."""

    model: str | None = None
    """The candidate MLflow model directory, relative to the project root."""
    test_data: str | None = None
    """The test split (CSV or Parquet), relative to the project root."""
    label: str | None = None
    """The test split's label column."""
    positive_label: str | int | bool | None = None
    """The positive class (selection rate, precision, recall, F1); None: the model's classes decide."""


@dataclass(frozen=True)
class GateSpec:
    """Every gate the project asks for; a family left out of the file is None."""

    path: Path
    performance: tuple[MetricThreshold, ...] = ()
    regression: RegressionGate | None = None
    latency: LatencyGate | None = None
    size: SizeGate | None = None
    fairness: FairnessGate | None = None
    behavioral: BehavioralGate | None = None
    evaluation: EvaluationSpec | None = None

    def as_dict(self) -> dict[str, Any]:
        """The spec in the file's own shape, for `mlci config`."""
        out: dict[str, Any] = {}
        if self.performance:
            out["performance"] = {
                t.metric: {
                    k: v for k, v in (("min", t.min), ("max", t.max), ("confidence", t.confidence)) if v is not None
                }
                for t in self.performance
            }
        for name in ("regression", "latency", "size", "fairness", "behavioral", "evaluation"):
            gate = getattr(self, name)
            if gate is not None:
                out[name] = {
                    k: (list(v) if isinstance(v, tuple) else v) for k, v in gate.__dict__.items() if v is not None
                }
        return out


def _number(
    node: Node, what: str, *, low: float | None = None, high: float | None = None, low_open: bool = False
) -> float:
    return node.number(what, low=low, high=high, low_open=low_open)


def _performance(node: Node) -> tuple[MetricThreshold, ...]:
    out = []
    for metric, bounds in node.mapping("performance").items():
        fields = bounds.fields(f"performance.{metric}", {"min", "max", "confidence"})
        if "min" not in fields and "max" not in fields:
            raise bounds.error(f"performance.{metric} needs a 'min' or a 'max'")
        high = 1.0 if metric in UNIT_INTERVAL_METRICS else None
        low = 0.0 if metric in UNIT_INTERVAL_METRICS else None
        lo = _number(fields["min"], f"performance.{metric}.min", low=low, high=high) if "min" in fields else None
        hi = _number(fields["max"], f"performance.{metric}.max", low=low, high=high) if "max" in fields else None
        if lo is not None and hi is not None and lo > hi:
            raise bounds.error(f"performance.{metric}: min {lo:g} is above max {hi:g}")
        level = None
        if "confidence" in fields:
            level = _confidence(fields["confidence"], f"performance.{metric}.confidence")
        out.append(MetricThreshold(metric, lo, hi, level))
    return tuple(out)


def _confidence(node: Node, what: str) -> float:
    """A confidence level: strictly between 0 and 1 (0.95, not 95)."""
    level = _number(node, what, low=0.0, low_open=True)
    if level >= 1.0:
        raise node.error(f"{what} is out of range: {node.value} (must be below 1, e.g. 0.95)")
    return level


def _string_list(node: Node, what: str) -> tuple[str, ...]:
    if not isinstance(node.value, list) or not node.value:
        raise node.error(f"{what} must be a non-empty list of names, got {type_name(node.value)}")
    names = []
    for item in node.value:
        if not isinstance(item.value, str) or not item.value:
            raise item.error(f"{what} entries must be names, got {type_name(item.value)}")
        names.append(item.value)
    return tuple(names)


def _fairness(node: Node) -> FairnessGate:
    f = node.fields(
        "fairness",
        {"max_disparity", "protected_attributes", "metric", "min_group_size"},
        {"max_disparity", "protected_attributes"},
    )
    metric = "accuracy"
    if "metric" in f:
        if not isinstance(f["metric"].value, str):
            raise f["metric"].error(f"fairness.metric must be a name, got {type_name(f['metric'].value)}")
        metric = f["metric"].value
        if canonical(metric) not in FAIRNESS_METRICS:
            raise f["metric"].error(
                f"fairness.metric {metric!r} is not one mlci can compare across groups "
                f"(expected one of: {', '.join(FAIRNESS_METRICS)})"
            )
    return FairnessGate(
        _number(f["max_disparity"], "fairness.max_disparity", low=0.0, high=1.0),
        _string_list(f["protected_attributes"], "fairness.protected_attributes"),
        metric,
        _count(f["min_group_size"], "fairness.min_group_size") if "min_group_size" in f else 30,
    )


def _count(node: Node, what: str) -> int:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int):
        raise node.error(f"{what} must be a whole number of rows, got {type_name(value)}")
    if not 1 <= value <= 10**12:
        raise node.error(f"{what} is out of range: {value} (must be at least 1)")
    return value


def _evaluation(node: Node) -> EvaluationSpec:
    f = node.fields("evaluation", {"model", "test_data", "label", "positive_label"})
    for key, child in f.items():
        if key == "positive_label":
            if not isinstance(child.value, str | int) or child.value == "":
                raise child.error(
                    f"evaluation.positive_label must be a label (a name or a number), got {type_name(child.value)}"
                )
        elif not isinstance(child.value, str) or not child.value:
            raise child.error(f"evaluation.{key} must be a path or a column name, got {type_name(child.value)}")
    return EvaluationSpec(**{k: v.value for k, v in f.items()})


def parse_gate_spec(root: Node) -> GateSpec:
    """Validate a parsed gate file; raises ConfigError at the offending key."""
    families = root.fields(
        "the gate file",
        {"performance", "regression", "latency", "size", "fairness", "behavioral", "evaluation"},
    )
    spec: dict[str, Any] = {}
    if "performance" in families:
        spec["performance"] = _performance(families["performance"])
    if "regression" in families:
        f = families["regression"].fields("regression", {"max_degradation", "confidence"}, {"max_degradation"})
        spec["regression"] = RegressionGate(
            _number(f["max_degradation"], "regression.max_degradation", low=0.0, high=1.0),
            _confidence(f["confidence"], "regression.confidence") if "confidence" in f else None,
        )
    if "latency" in families:
        f = families["latency"].fields("latency", {"p50_ms", "p95_ms", "p99_ms"})
        if not f:
            raise families["latency"].error("latency needs at least one of p50_ms, p95_ms, p99_ms")
        values = {k: _number(v, f"latency.{k}", low=0.0, low_open=True) for k, v in f.items()}
        spec["latency"] = LatencyGate(**values)
    if "size" in families:
        f = families["size"].fields("size", {"max_mb"}, {"max_mb"})
        spec["size"] = SizeGate(_number(f["max_mb"], "size.max_mb", low=0.0, low_open=True))
    if "fairness" in families:
        spec["fairness"] = _fairness(families["fairness"])
    if "behavioral" in families:
        f = families["behavioral"].fields("behavioral", {"test_cases", "min_pass_rate"}, {"test_cases"})
        cases = f["test_cases"]
        if not isinstance(cases.value, str) or not cases.value:
            raise cases.error(f"behavioral.test_cases must be a path, got {type_name(cases.value)}")
        rate = 1.0
        if "min_pass_rate" in f:
            rate = _number(f["min_pass_rate"], "behavioral.min_pass_rate", low=0.0, high=1.0)
        spec["behavioral"] = BehavioralGate(cases.value, rate)
    if "evaluation" in families:
        spec["evaluation"] = _evaluation(families["evaluation"])
    return GateSpec(path=root.path, **spec)


def load_gate_spec(path: Path) -> GateSpec:
    """Load and validate `model_gates.yaml`."""
    return parse_gate_spec(load_yaml(path))
