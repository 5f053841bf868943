"""The last known state, for a dashboard that opens on a live picture instead of an empty one.

When mlci opens, the history (`.mlci/history.sqlite`) holds each tier's last verdict and the
last gate report, and the tracking store holds the last training run's curves and the
champion's. `last_known_state` turns them into events, each verdict marked `stale` when the
tree has moved on since it was given: another commit is checked out, or a file git sees was
changed after the run (DVC-tracked data is judged by its `.dvc` files and `dvc.lock`).

It reads only: sqlite and MLflow in read-only queries, git without optional locks. Called
off the UI thread; a sqlite tracking store is read without importing MLflow (`mlflow_sqlite`),
any other store through MLflow's client, and only when it is there.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from mlci.engine.config.loader import Config
from mlci.engine.config.tracking_store import sqlite_path, unreachable_reason
from mlci.engine.events import (
    Event,
    GateReport,
    LastGateReport,
    LastVerdict,
    Notice,
    ReferenceRun,
    Tier,
    Verdict,
    event_from_json,
)
from mlci.engine.loop.history import HISTORY_FILE, head_commit

__all__ = ["last_known_state"]

Emit = Callable[[Event], None]

_LAST_RUN = """
SELECT verdict, finished, duration, passed, failed, reason, {commit}, mlflow_run_id
FROM tier_runs
WHERE tier = ? AND finished IS NOT NULL AND verdict IS NOT NULL AND verdict != 'cancelled'
ORDER BY finished DESC LIMIT 1
"""
_LAST_REPORT = "SELECT event, git_commit, at FROM gate_reports WHERE event != '' ORDER BY at DESC LIMIT 1"
_LAST_TRAINING = """
SELECT mlflow_run_id FROM tier_runs
WHERE tier = 'model' AND mlflow_run_id != '' AND finished IS NOT NULL
ORDER BY finished DESC LIMIT 1
"""


class _TreeNow:
    """The tree as it is now, read once (HEAD, and when each changed file last changed) for every verdict."""

    def __init__(self, root: Path) -> None:
        self.head = head_commit(root)
        result = subprocess.run(
            ["git", "status", "--porcelain", "-z", "--untracked-files=all"],
            cwd=root,
            capture_output=True,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            timeout=30,
        )
        self.newest = float("inf") if result.returncode != 0 else 0.0
        """The latest modification time among the changed files; infinity when git or a file cannot say."""
        for entry in result.stdout.split(b"\0") if result.returncode == 0 else ():
            path = entry[3:].decode("utf-8", "surrogateescape")
            if not path:
                continue
            try:
                self.newest = max(self.newest, (root / path).stat().st_mtime)
            except OSError:  # deleted since: the tree moved on
                self.newest = float("inf")

    def moved_on(self, commit: str, at: float) -> bool:
        """Whether the tree differs from what a run at `at` on `commit` saw (see the module docstring)."""
        return not commit or commit != self.head or self.newest > at


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}


def _read_history(config: Config) -> tuple[list[Event], str]:
    """The tiers' last verdicts and the last gate report, and the last training run's MLflow id."""
    path = config.root / HISTORY_FILE
    if not path.is_file():
        return [], ""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    try:
        # A history an older mlci wrote lacks the commit and the whole report: read what is there.
        runs = _columns(conn, "tier_runs")
        last_run = _LAST_RUN.format(commit="git_commit" if "git_commit" in runs else "''")
        events: list[Event] = []
        tree = _TreeNow(config.root)
        for tier in config.tiers:
            row = conn.execute(last_run, (tier.value,)).fetchone()
            if row is None:
                continue
            verdict, finished, duration, passed, failed, reason, commit, _run = row
            events.append(
                LastVerdict(
                    tier,
                    Verdict(verdict),
                    float(finished),
                    float(duration or 0.0),
                    int(passed),
                    int(failed),
                    str(reason),
                    str(commit),
                    tree.moved_on(str(commit), float(finished)),
                )
            )
        row = conn.execute(_LAST_REPORT).fetchone() if "event" in _columns(conn, "gate_reports") else None
        if row is not None:
            report = event_from_json(json.loads(row[0]))
            if isinstance(report, GateReport):
                events.append(LastGateReport(report, str(row[1]), tree.moved_on(str(row[1]), float(row[2]))))
        training = conn.execute(_LAST_TRAINING).fetchone()
        return events, str(training[0]) if training else ""
    finally:
        conn.close()


def _store_in_use(config: Config) -> bool:
    """Whether the project's tracking store exists: reading must never create one."""
    db = sqlite_path(config.mlflow.tracking_uri)
    if db is not None:
        return db.is_file()
    return unreachable_reason(config.mlflow.tracking_uri) is None


def _curves(config: Config, training_run: str, emit: Emit) -> None:
    """The last training run's curves, then the champion's as a reference, as MetricPoints."""
    from mlci.engine.telemetry.live_metrics import MetricFollower

    uri = config.mlflow.tracking_uri
    if training_run:
        MetricFollower(uri, training_run, emit).poll_once()
    from mlci.engine.gates.baseline import champion_run

    champion = champion_run(config)
    if champion and champion != training_run:
        emit(ReferenceRun(champion, "champion"))
        MetricFollower(uri, champion, emit).poll_once()


def _dvclive_curves(config: Config, emit: Emit) -> None:
    """The curves DVCLive's files hold from the last run, when DVC does not know them as plots."""
    from mlci.engine.events import DVCLIVE_RUN_PREFIX
    from mlci.engine.telemetry.dvclive_follower import DvcLiveFollower, dvclive_dirs

    dirs = dvclive_dirs(config.root)
    if dirs:
        run_id = f"{DVCLIVE_RUN_PREFIX}{dirs[0].relative_to(config.root).as_posix()}"
        DvcLiveFollower(dirs, run_id, emit, include_existing=True).poll_once()


def last_known_state(config: Config, emit: Emit) -> None:
    """Emit what earlier sessions left: LastVerdict per tier, LastGateReport, the curves.

    A project that does not use MLflow has no curves in a store: its DVC metrics (against the
    main branch) and DVC's line plots come instead, as one DvcMetrics, and the curves DVCLive's
    files hold when DVC has no plots.

    Never raises for a missing, older or locked history or an unreachable store: what
    cannot be read is left out, with a notice when it is worth knowing.
    """
    try:
        events, training_run = _read_history(config)
    except (sqlite3.Error, OSError, ValueError, subprocess.SubprocessError) as exc:
        emit(Notice("warning", f"could not read the run history: {exc}", source="history"))
        events, training_run = [], ""
    for event in events:
        emit(event)
    if Tier.MODEL in config.tiers and not config.mlflow.used:
        # No MLflow run to show: what the project's DVC metrics and plots say, against main.
        from mlci.engine.telemetry.dvc_metrics import read_dvc_metrics_event

        shown = read_dvc_metrics_event(config.root, config.git.main_branch)
        if shown.values or shown.plots:
            emit(shown)
        if not shown.plots:
            _dvclive_curves(config, emit)
        return
    if Tier.MODEL not in config.tiers or not _store_in_use(config):
        return
    try:
        _curves(config, training_run, emit)
    except Exception as exc:  # the store's own errors come in many types; the dashboard carries on
        emit(Notice("warning", f"could not read the last training run's curves: {exc}", source="metrics"))
