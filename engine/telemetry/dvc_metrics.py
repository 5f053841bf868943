"""A DVC project's metrics, their change against the main branch, and its line plots, as one `DvcMetrics` event.

Everything comes from DVC's own Python API (`Repo.metrics.show`, `Repo.metrics.diff`,
`Repo.plots.show`): what `dvc metrics show`, `dvc metrics diff main` and `dvc plots show`
print, with DVC deciding which files are metrics and plots, so any DVC project gets the
same picture it gets from DVC. Only line plots are kept (the `linear`, `simple` and
`smooth` templates, DVC's default): a confusion matrix is no curve.

It only reads: DVC reads a revision from git's objects, never by checking it out.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlci.engine.config.dvc_repo import in_dvc_repo, open_dvc_repo
from mlci.engine.config.metric_names import flatten_numbers
from mlci.engine.events import DvcMetric, DvcMetrics, DvcPlot

__all__ = ["LINE_TEMPLATES", "read_dvc_metrics_event"]

LINE_TEMPLATES = frozenset({"linear", "simple", "smooth"})
"""DVC's plot templates that draw lines (`linear` is the default)."""
MAX_PLOT_POINTS = 2000
"""Per line, the last points kept: a terminal plot cannot show more, and events stay small."""
_STEP_KEYS = frozenset({"step"})
"""DVCLive records the step beside the metrics; it is the x axis of the curves, not a metric to compare."""


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _relative(name: str, root: Path) -> str:
    path = Path(name)
    if path.is_absolute() and path.is_relative_to(root):
        path = path.relative_to(root)
    return path.as_posix()


def _branch_exists(root: Path, branch: str) -> bool:
    proc = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"],
        cwd=root,
        capture_output=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode == 0


def _metrics(repo: Any, root: Path, errors: list[str]) -> dict[tuple[str, str], float]:
    shown = repo.metrics.show(on_error="return")
    found: dict[tuple[str, str], float] = {}
    for rev_data in shown.values():
        if "error" in rev_data:
            errors.append(f"metrics: {rev_data['error']}")
        for name, file_data in (rev_data.get("data") or {}).items():
            if "error" in file_data:
                errors.append(f"{_relative(name, root)}: {file_data['error']}")
                continue
            for key, value in flatten_numbers(file_data.get("data") or {}).items():
                found[(_relative(name, root), key)] = value
    return found


def _old_values(repo: Any, root: Path, against: str, errors: list[str]) -> dict[tuple[str, str], float]:
    try:
        diff = repo.metrics.diff(a_rev=against, all=True)
    except Exception as exc:  # DVC's errors for a revision it cannot read come in many types
        errors.append(f"metrics diff against {against}: {exc}")
        return {}
    old: dict[tuple[str, str], float] = {}
    for name, keys in (diff.get("diff") or {}).items():
        for key, change in keys.items():
            value = _number(change.get("old")) if isinstance(change, Mapping) else None
            if value is not None:
                old[(_relative(name, root), key)] = value
    return old


def _line_props(definitions: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Data file -> the props of the line plot that draws it (x, y), from DVC's plot definitions."""
    lines: dict[str, dict[str, Any]] = {}
    for config_file in definitions.values():
        for plot_id, props in ((config_file or {}).get("data") or {}).items():
            props = props or {}
            if props.get("template", "linear") not in LINE_TEMPLATES:
                continue
            y = props.get("y")
            if isinstance(y, Mapping):  # a top-level plot: y names its files and their columns
                for source, columns in y.items():
                    ys = [columns] if isinstance(columns, str) else list(columns)
                    lines[str(source)] = {"x": props.get("x"), "y": ys}
            else:
                lines[str(plot_id)] = {"x": props.get("x"), "y": [y] if isinstance(y, str) else None}
    return lines


def _plots(repo: Any, root: Path, errors: list[str]) -> list[DvcPlot]:
    shown = repo.plots.show()
    workspace = shown.get("workspace") or {}
    for where in ("definitions", "sources"):
        if "error" in (workspace.get(where) or {}):
            errors.append(f"plots {where}: {workspace[where]['error']}")
    lines = _line_props((workspace.get("definitions") or {}).get("data") or {})
    plots: list[DvcPlot] = []
    for source, content in ((workspace.get("sources") or {}).get("data") or {}).items():
        rows = (content or {}).get("data")
        relative = _relative(source, root)
        props = lines.get(source) or lines.get(relative)
        if props is None or not isinstance(rows, list) or not rows or not isinstance(rows[0], Mapping):
            continue
        x = props.get("x") or "step"
        columns = props.get("y") or [c for c in rows[0] if c not in (x, "timestamp")]
        for y in columns:
            points = [(_number(row.get(x, i)), _number(row.get(y))) for i, row in enumerate(rows)]
            kept = [(px, py) for px, py in points if px is not None and py is not None][-MAX_PLOT_POINTS:]
            if kept:
                xs, ys = zip(*kept, strict=True)
                plots.append(DvcPlot(relative, str(x), str(y), tuple(xs), tuple(ys)))
    return plots


def read_dvc_metrics_event(root: Path, main_branch: str = "main") -> DvcMetrics:
    """The project's metrics (with their value on `main_branch`) and line plots; never raises."""
    root = root.resolve()
    if not in_dvc_repo(root):  # a git project without DVC: nothing to show, and nothing wrong
        return DvcMetrics((), "", (), ())
    errors: list[str] = []
    against = main_branch if _branch_exists(root, main_branch) else ""
    values: list[DvcMetric] = []
    plots: list[DvcPlot] = []
    try:
        with open_dvc_repo(root) as repo:
            current = _metrics(repo, root, errors)
            old = _old_values(repo, root, against, errors) if against else {}
            for source, key in sorted({*current, *old}):
                if key in _STEP_KEYS:
                    continue
                values.append(DvcMetric(source, key, current.get((source, key)), old.get((source, key))))
            try:
                plots = _plots(repo, root, errors)
            except Exception as exc:  # a broken plot definition must not hide the metrics
                errors.append(f"plots: {exc}")
    except Exception as exc:  # not a DVC project DVC can open: said, not raised
        errors.append(f"DVC could not read the project: {exc}")
    return DvcMetrics(tuple(values), against, tuple(plots), tuple(errors))
