"""Write a first `model_gates.yaml` from what a project has today: its metrics and its model file.

`mlci gates init` gathers the facts (the DVC metrics of the working tree, the model file);
this module only turns them into a commented gate file that `gate_file.load_gate_spec`
accepts: a performance gate per metric (a `min` of today's value minus the tolerance, or a
`max` of today's value plus it for a metric where lower is better, such as a loss), a
regression gate with the same tolerance, and a size gate from the model file's size.

The tolerance is absolute for metrics within [-1, 1] (0.02 is two points of accuracy) and
relative beyond (2% of an MSE of 300): one number that means something for either scale.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from mlci.engine.config.gate_file import UNIT_INTERVAL_METRICS
from mlci.engine.config.metric_names import canonical, higher_is_better

__all__ = ["DEFAULT_TOLERANCE", "NOT_METRICS", "CurrentMetric", "ModelFile", "render_gate_file"]

DEFAULT_TOLERANCE = 0.02
"""How much worse than today a metric may get before its gate fails."""
SIZE_HEADROOM = 1.5
"""The size gate allows the model to grow by half before it fails."""
NOT_METRICS = frozenset(
    {"step", "epoch", "epochs", "iteration", "timestamp", "time", "duration", "rows", "count", "samples", "n", "seed"}
)
"""Keys that metrics files (DVCLive's `step`) record beside the metrics, and that no gate should bound."""
_NOT_METRIC_SUFFIXES = ("_seconds", "_time", "_ms", "_s", "_count", "_rows", "_samples", "_size")
_NOT_METRIC_PREFIXES = ("n_", "num_")
"""Timings and counts: they vary with the machine and the data, not with how good the model is."""
_LOWER_IS_BETTER_WORDS = ("loss", "error", "disparity", "latency")

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_./\-]*$")


@dataclass(frozen=True)
class CurrentMetric:
    """A metric's value today, and the file it was read from."""

    name: str
    value: float
    source: str


@dataclass(frozen=True)
class ModelFile:
    """The model the size gate bounds: project-relative path, size, and why it was taken for the model."""

    path: str
    size_bytes: int
    why: str
    named: bool = True
    """Whether the gate file must name it (`evaluation.model`): the gates find an MLflow model on their own."""


def _key(name: str) -> str:
    return name if _PLAIN_KEY.match(name) else json.dumps(name)


def _round(value: float) -> float:
    """Four decimals, like the gate table prints; never `-0.0`."""
    return round(value, 4) + 0.0


def _bound(metric: CurrentMetric, tolerance: float) -> tuple[str, float, str]:
    """("min" or "max", the bound, how it was computed) for one metric."""
    margin = tolerance * max(1.0, abs(metric.value))
    how = f"{tolerance:g}" if abs(metric.value) <= 1.0 else f"{tolerance:.0%} of it"
    leaf = metric.name.rsplit(".", 1)[-1].lower()
    if higher_is_better(leaf) and not any(word in leaf for word in _LOWER_IS_BETTER_WORDS):
        bound = metric.value - margin
        if canonical(metric.name) in UNIT_INTERVAL_METRICS:
            bound = max(bound, 0.0)
        return "min", _round(bound), f"today {metric.value:.4g} ({metric.source}) minus {how}"
    bound = metric.value + margin
    return "max", _round(bound), f"today {metric.value:.4g} ({metric.source}) plus {how}: lower is better"


def _is_metric(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1].lower()
    return not (leaf in NOT_METRICS or leaf.endswith(_NOT_METRIC_SUFFIXES) or leaf.startswith(_NOT_METRIC_PREFIXES))


def gateable(metrics: Sequence[CurrentMetric]) -> list[CurrentMetric]:
    """The metrics a gate can bound: finite, not a step counter, a timing or a count; the first file's for a name.

    A file's top-level metrics, when it has any: its nested ones (per-group figures) are details of those.
    """
    top_level = {m.source for m in metrics if "." not in m.name and _is_metric(m.name)}
    seen: set[str] = set()
    out = []
    for metric in metrics:
        nested_detail = "." in metric.name and metric.source in top_level
        if nested_detail or not _is_metric(metric.name) or not math.isfinite(metric.value) or metric.name in seen:
            continue
        seen.add(metric.name)
        out.append(metric)
    return out


def _size_mb(model: ModelFile) -> float:
    mb = model.size_bytes * SIZE_HEADROOM / 1e6  # SI megabytes, as the size gate counts them
    # Two significant figures, rounded up, so the bound reads like a number someone chose.
    digits = max(0, 1 - math.floor(math.log10(mb))) if mb > 0 else 2
    return math.ceil(mb * 10**digits) / 10**digits if mb > 0 else 0.01


def render_gate_file(
    metrics: Sequence[CurrentMetric], model: ModelFile | None, *, tolerance: float = DEFAULT_TOLERANCE
) -> str:
    """The text of a gate file for these metrics and this model (either may be missing, not both)."""
    kept = gateable(metrics)
    lines = [
        "# model_gates.yaml, written by `mlci gates init` from what the project has today.",
        f"# Each gate allows a tolerance of {tolerance:g} (absolute within [-1, 1], relative beyond): tighten it",
        "# once you know how much your metrics vary. `mlci gates` evaluates this file.",
        "",
    ]
    if kept:
        lines.append("# A bound per metric found in the project's DVC metrics files.")
        lines.append("performance:")
        for metric in kept:
            side, bound, how = _bound(metric, tolerance)
            lines.append(f"  {_key(metric.name)}: {{{side}: {bound}}}  # {how}")
        lines.append("")
        lines.append("# No metric may get worse than the baseline (the MLflow champion, else main's metrics) by more.")
        lines.append(f"regression: {{max_degradation: {min(tolerance, 1.0):g}}}")
        lines.append("")
    if model is not None:
        lines.append(f"# The model is {model.size_bytes / 1e6:.3g} MB today ({model.why}); it may grow by half.")
        lines.append(f"size: {{max_mb: {_size_mb(model):g}}}")
        lines.append("")
    if model is not None and model.named:
        lines.append("# Which file is the model (the size gate measures it).")
        lines.append(f"evaluation: {{model: {_key(model.path)}}}")
        lines.append("")
    return "\n".join(lines)
