"""The project's DVC metrics files, in the working tree or at a git revision, flattened to numbers.

Any DVC project has them (`metrics:` outputs in dvc.yaml), with MLflow or without, so
they are the first place the gates look for a performance metric. DVC's own API reads
them, at a revision too (`rev="main"` is the baseline when there is no `champion`),
without touching the working tree. A project that declares no metrics file but has a
`metrics.json` at its root gets that file read as well.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.engine.config.dvc_repo import in_dvc_repo, open_dvc_repo
from mlci.engine.config.metric_names import flatten_numbers, lookup

__all__ = [
    "FALLBACK_METRICS_FILE",
    "FoundMetric",
    "RecordedMetrics",
    "dvc_rev_data",
    "read_dvc_metrics",
]

FALLBACK_METRICS_FILE = "metrics.json"
"""Read when dvc.yaml declares no metrics file: the name DVC's own docs and templates use."""


@dataclass(frozen=True)
class FoundMetric:
    """A metric found in a file: which file, under which key, and its value."""

    source: str
    key: str
    value: float


@dataclass(frozen=True)
class RecordedMetrics:
    """Numbers from metrics files, per file, in the order the files were read."""

    files: dict[str, dict[str, float]] = field(default_factory=dict)
    """File (project-relative) -> flattened key -> value."""
    errors: tuple[str, ...] = ()
    """Files that could not be read, and why."""

    def find(self, name: str) -> FoundMetric | None:
        """The metric `name` (any spelling, see metric_names) from the first file that has it."""
        for source, values in self.files.items():
            hit = lookup(name, values)
            if hit is not None:
                return FoundMetric(source, hit[0], hit[1])
        return None

    def describe(self) -> str:
        """The files read, for reasons like "no metric 'foo' in metrics.json"."""
        return ", ".join(self.files) if self.files else "no DVC metrics file"


def dvc_rev_data(shown: Mapping[str, Any], rev: str | None) -> list[Mapping[str, Any]]:
    """DVC's answer for `rev` alone: asked for a revision, DVC adds the workspace too."""
    if rev is not None:
        return [shown[rev]] if rev in shown else []
    return [v for k, v in shown.items() if k in ("", "workspace")]


def _from_dvc(root: Path, rev: str | None) -> tuple[dict[str, dict[str, float]], list[str]]:
    files: dict[str, dict[str, float]] = {}
    errors: list[str] = []
    with open_dvc_repo(root) as repo:
        shown = repo.metrics.show(revs=[rev] if rev else None, on_error="return")
    for rev_data in dvc_rev_data(shown, rev):
        if "error" in rev_data:
            errors.append(f"{rev or 'workspace'}: {rev_data['error']}")
        for name, file_data in (rev_data.get("data") or {}).items():
            relative = Path(name)
            if relative.is_absolute():
                relative = relative.relative_to(root)
            if "error" in file_data:
                errors.append(f"{relative.as_posix()}: {file_data['error']}")
                continue
            files[relative.as_posix()] = flatten_numbers(file_data.get("data") or {})
    return files, errors


def _fallback_file(root: Path, rev: str | None) -> str | None:
    if rev is None:
        path = root / FALLBACK_METRICS_FILE
        return path.read_text(encoding="utf-8") if path.is_file() else None
    proc = subprocess.run(
        ["git", "show", f"{rev}:{FALLBACK_METRICS_FILE}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return proc.stdout if proc.returncode == 0 else None


def read_dvc_metrics(root: Path, *, rev: str | None = None) -> RecordedMetrics:
    """The DVC metrics of the working tree (rev None) or of a git revision; never raises for a bad file."""
    files: dict[str, dict[str, float]] = {}
    errors: list[str] = []
    if in_dvc_repo(root):
        try:
            files, errors = _from_dvc(root, rev)
        except Exception as exc:  # a broken DVC project still gets its other gates evaluated
            errors.append(f"DVC could not read the metrics: {exc}")
    if not files:
        text = _fallback_file(root, rev)
        if text is not None:
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                errors.append(f"{FALLBACK_METRICS_FILE}: not JSON ({exc})")
            else:
                if isinstance(data, dict):
                    files[FALLBACK_METRICS_FILE] = flatten_numbers(data)
    # An infinite metric is as meaningless as NaN, and must not pass a `min` bound: both fail closed.
    finite = {f: {k: (math.nan if math.isinf(v) else v) for k, v in vals.items()} for f, vals in files.items()}
    return RecordedMetrics(finite, tuple(errors))
