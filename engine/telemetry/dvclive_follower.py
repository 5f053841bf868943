"""Follow DVCLive's files while the model tier trains, and emit each new value once, as a MetricPoint.

DVCLive (`Live().log_metric(...)`, `next_step()`) rewrites, at every step, one TSV per metric
under `<dir>/plots/metrics/` (`timestamp`, `step`, the metric: nested names are folders) and
the latest values in `<dir>/metrics.json`. A project that logs that way, with MLflow or
without, gets live curves from this follower: it polls the files from a thread, reads a file
only when its size or modification time moved, and emits only (step, value) pairs it has not
emitted yet. The files that were there before the tier started are the previous run's: they
are left alone until the stages rewrite them.

It only reads, and never raises into its caller: a file caught half-written is read again
at the next poll.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mlci.engine.events import Event, MetricPoint

__all__ = ["DvcLiveFollower", "dvclive_dirs"]

DEFAULT_DIR = "dvclive"
"""DVCLive's default folder (`Live(dir="dvclive")`)."""
_Mark = tuple[int, int]
"""(size, mtime_ns) of a file: when it moves, the file is read again."""


def dvclive_dirs(root: Path) -> list[Path]:
    """DVCLive folders of the project, two levels deep at most: `dvclive/`, and any folder with DVCLive's layout.

    DVC's example-get-started logs into `results/train` and `results/evaluate`, others into `eval/`.
    """
    found: list[Path] = []
    candidates = [root / DEFAULT_DIR, *sorted(root.glob("*")), *sorted(root.glob("*/*"))]
    for path in candidates:
        if path in found or not path.is_dir() or any(p.startswith(".") for p in path.relative_to(root).parts):
            continue
        if path.name == DEFAULT_DIR or ((path / "metrics.json").is_file() and (path / "plots" / "metrics").is_dir()):
            found.append(path)
    return found


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


class DvcLiveFollower:
    """Polls DVCLive folders and emits new points as MetricPoints of `run_id`; `start()` it, `stop()` it."""

    def __init__(
        self,
        dirs: list[Path],
        run_id: str,
        emit: Callable[[Event], None],
        *,
        interval_s: float = 0.5,
        include_existing: bool = False,
    ) -> None:
        """`include_existing`: read what the files hold now too (the last run's curves, when mlci opens)."""
        self.dirs = dirs
        self.run_id = run_id
        self.interval_s = interval_s
        self._emit = emit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._marks: dict[Path, _Mark] = {}
        self._emitted: dict[str, dict[int, float]] = {}
        """Metric key -> step -> value already emitted."""
        self._baseline = {} if include_existing else dict(self._scan())
        """Files as the previous run left them: skipped until they change."""

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="mlci-dvclive", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop following, after one last poll so that the final step is not lost."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            stopping = self._stop.is_set()
            with contextlib.suppress(Exception):  # a file mid-write or gone: the next poll reads it again
                self.poll_once()
            if stopping:
                return
            self._stop.wait(self.interval_s)

    # -- polling --------------------------------------------------------------------------------

    def _files(self) -> list[tuple[Path, Path]]:
        """(DVCLive folder, file) of every metrics TSV and metrics.json, in a stable order."""
        out: list[tuple[Path, Path]] = []
        for folder in self.dirs:
            plots = folder / "plots" / "metrics"
            if plots.is_dir():
                out += [(folder, p) for p in sorted(plots.rglob("*.tsv"))]
            if (folder / "metrics.json").is_file():
                out.append((folder, folder / "metrics.json"))
        return out

    def _scan(self) -> dict[Path, _Mark]:
        marks: dict[Path, _Mark] = {}
        for _folder, path in self._files():
            try:
                stat = path.stat()
            except OSError:
                continue
            marks[path] = (stat.st_size, stat.st_mtime_ns)
        return marks

    def poll_once(self) -> int:
        """Emit every point written since the last poll; the number emitted."""
        emitted = 0
        marks = self._scan()
        tsv_keys: set[str] = set()
        for folder, path in self._files():
            mark = marks.get(path)
            if path.suffix == ".tsv":
                tsv_keys.add(self._key(folder, path))
            if mark is None or mark == self._marks.get(path) or mark == self._baseline.get(path):
                continue
            text = path.read_text(encoding="utf-8")
            points = (
                self._json_points(folder, text, tsv_keys)
                if path.suffix == ".json"
                else self._tsv_points(folder, path, text)
            )
            if points is None:
                continue  # half-written: read again next time
            self._marks[path] = mark
            for key, step, value in points:
                if self._emitted.setdefault(key, {}).get(step) == value:
                    continue
                self._emitted[key][step] = value
                self._emit(MetricPoint(self.run_id, key, step, value, int(time.time() * 1000)))
                emitted += 1
        return emitted

    def _key(self, folder: Path, path: Path) -> str:
        """The metric's DVCLive name (`train/loss`), under its folder's name when several folders are followed."""
        key = path.relative_to(folder / "plots" / "metrics").with_suffix("").as_posix()
        return f"{folder.name}/{key}" if len(self.dirs) > 1 else key

    def _tsv_points(self, folder: Path, path: Path, text: str) -> list[tuple[str, int, float]] | None:
        if not text.endswith("\n"):
            return None
        key = self._key(folder, path)
        leaf = path.stem
        points = []
        for index, row in enumerate(csv.DictReader(io.StringIO(text), delimiter="\t")):
            value = _number(row.get(leaf))
            step = _number(row.get("step"))
            if value is None:
                continue
            points.append((key, int(step) if step is not None else index, value))
        return points

    def _json_points(self, folder: Path, text: str, tsv_keys: set[str]) -> list[tuple[str, int, float]] | None:
        """metrics.json's values at its `step`, for metrics that have no TSV of their own (a summary-only metric)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return []
        step = data.pop("step", 0)
        step = int(step) if isinstance(step, int | float) and not isinstance(step, bool) else 0
        prefix = f"{folder.name}/" if len(self.dirs) > 1 else ""
        points = []
        for name, value in _flatten(data).items():
            key = f"{prefix}{name}"
            if key not in tsv_keys:
                points.append((key, step, value))
        return points


def _flatten(data: dict[str, object], prefix: str = "") -> dict[str, float]:
    """Nested names as DVCLive spells them in its plots folder (`train/loss`); finite numbers only."""
    out: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[f"{prefix}{key}"] = float(value)
    return out
