"""Run history in one sqlite file, `<project>/.mlci/history.sqlite`: plans, tier runs, test results, gate reports,
and the proofs: the content keys of the commits the pre-push check found green (see `loop.proof`).

`History.record` takes the engine's events as they are emitted (from any engine thread) and
writes each fact in one transaction, so a crash never leaves half a run behind. The database
runs in WAL mode, so `mlci why` can read it while `mlci watch` writes. Several processes may
write at once (a watch and a pre-push check): rows carry a per-process session key next to the
in-process plan and run numbers, which are only unique within one session.

`.mlci/` gets a `.gitignore` of `*`, so the history never shows up as an untracked change.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlci.engine.config.private_dir import PRIVATE_DIR, private_dir
from mlci.engine.events import (
    Event,
    GateReport,
    PlanMade,
    TestResult,
    TierFinished,
    TierStarted,
    Trigger,
    event_to_json,
)

if TYPE_CHECKING:
    from mlci.engine.loop.proof import ContentKey

__all__ = [
    "HISTORY_FILE",
    "History",
    "PlanRecord",
    "Proof",
    "RunRecord",
    "read_last_plans",
    "recall_proof",
    "remember_proof",
]

HISTORY_FILE = PRIVATE_DIR / "history.sqlite"
"""Where the history lives, relative to the project root."""

_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS plans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL,
    plan_id INTEGER NOT NULL,
    at REAL NOT NULL,
    tiers TEXT NOT NULL,
    triggers TEXT NOT NULL,
    stages TEXT NOT NULL,
    changed TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tier_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    plan_id INTEGER NOT NULL,
    tier TEXT NOT NULL,
    command TEXT NOT NULL DEFAULT '[]',
    full INTEGER NOT NULL DEFAULT 0,
    mlflow_run_id TEXT NOT NULL DEFAULT '',
    started REAL,
    finished REAL,
    verdict TEXT,
    duration REAL,
    passed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tier_runs_by_plan ON tier_runs (session, plan_id);
CREATE TABLE IF NOT EXISTS test_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tier_run INTEGER NOT NULL REFERENCES tier_runs (id),
    nodeid TEXT NOT NULL,
    outcome TEXT NOT NULL,
    duration REAL NOT NULL,
    longrepr TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS test_results_by_run ON test_results (tier_run);
CREATE TABLE IF NOT EXISTS proofs (
    key TEXT PRIMARY KEY,
    sha TEXT NOT NULL,
    at REAL NOT NULL,
    parts TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS gate_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL,
    tier_run INTEGER REFERENCES tier_runs (id),
    at REAL NOT NULL,
    passed INTEGER NOT NULL,
    model_uri TEXT NOT NULL,
    baseline TEXT NOT NULL,
    results TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class RunRecord:
    """One tier run as the history has it (verdict None: it never finished, e.g. the process died)."""

    tier: str
    verdict: str | None
    duration_s: float | None
    passed: int
    failed: int
    reason: str
    started: float | None
    failed_tests: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanRecord:
    """One plan: when, which tiers, and why (the triggers), with the runs it led to."""

    plan_id: int
    at: float
    tiers: tuple[str, ...]
    triggers: tuple[Trigger, ...]
    stages: tuple[str, ...]
    changed: tuple[str, ...]
    runs: tuple[RunRecord, ...]


@dataclass(frozen=True)
class Proof:
    """A content the pre-push check found green: which commit had it, and when."""

    key: str
    sha: str
    at: float


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _open(root: Path) -> sqlite3.Connection:
    """The history's connection, its folder, `.gitignore` and schema made when missing."""
    path = private_dir(root) / HISTORY_FILE.name
    conn = _connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(_SCHEMA)  # idempotent: every statement is CREATE ... IF NOT EXISTS
    _add_missing_columns(conn)
    conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
    return conn


_ADDED_COLUMNS = (
    # Version 2: the commit each run judged, and each gate report whole (its intervals included),
    # so the dashboard can open on the last known state and say what it judged.
    ("tier_runs", "git_commit", "TEXT NOT NULL DEFAULT ''"),
    ("gate_reports", "git_commit", "TEXT NOT NULL DEFAULT ''"),
    ("gate_reports", "event", "TEXT NOT NULL DEFAULT ''"),
)


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """Bring a history written by an older mlci up to this schema (columns only ever get added)."""
    for table, column, kind in _ADDED_COLUMNS:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def head_commit(root: Path) -> str:
    """The commit checked out in `root` (full SHA), "" when there is none (no git, no commit yet)."""
    import os
    import subprocess

    try:
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def remember_proof(root: Path, key: ContentKey, sha: str) -> None:
    """Store that the content `key` (of commit `sha`) was checked green now."""
    conn = _open(root)
    try:
        conn.execute(
            "INSERT OR REPLACE INTO proofs (key, sha, at, parts) VALUES (?,?,?,?)",
            (key.digest, sha, time.time(), json.dumps(dict(key.parts))),
        )
    finally:
        conn.close()


def recall_proof(root: Path, key: str) -> Proof | None:
    """The green check of this content key, if there was one; None without a history."""
    path = root / HISTORY_FILE
    if not path.is_file():
        return None
    conn = _connect(path)
    try:
        row = conn.execute("SELECT key, sha, at FROM proofs WHERE key=?", (key,)).fetchone()
    except sqlite3.Error:  # an older history without the table: nothing proven yet
        return None
    finally:
        conn.close()
    return Proof(str(row[0]), str(row[1]), float(row[2])) if row is not None else None


class History:
    """The writer: one connection, shared by the engine's threads under a lock."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / HISTORY_FILE
        self.session = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._conn = _open(root)
        self._rows: dict[int, int] = {}
        """In-process run id -> tier_runs row."""
        self._results: dict[int, list[TestResult]] = {}
        self._model_row: int | None = None
        """The row of the latest model tier run: its gate report belongs to it."""
        self._model_commit = ""

    def _transaction(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def record(self, event: Event) -> None:
        """Store what the history keeps of `event`; other events are ignored."""
        if isinstance(event, TestResult):
            with self._lock:
                self._results.setdefault(event.run_id, []).append(event)
            return
        if not isinstance(event, PlanMade | TierStarted | TierFinished | GateReport):
            return
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._write(event)
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _write(self, event: PlanMade | TierStarted | TierFinished | GateReport) -> None:
        conn = self._conn
        if isinstance(event, PlanMade):
            conn.execute(
                "INSERT INTO plans (session, plan_id, at, tiers, triggers, stages, changed) VALUES (?,?,?,?,?,?,?)",
                (
                    self.session,
                    event.plan_id,
                    event.at,
                    json.dumps([t.value for t in event.tiers]),
                    json.dumps(
                        [{"tier": t.tier.value, "rule": t.rule, "paths": list(t.paths)} for t in event.triggers]
                    ),
                    json.dumps(list(event.stages)),
                    json.dumps(list(event.changed)),
                ),
            )
        elif isinstance(event, TierStarted):
            commit = head_commit(self.root)
            cursor = conn.execute(
                "INSERT INTO tier_runs (session, run_id, plan_id, tier, command, full, mlflow_run_id, started,"
                " git_commit) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    self.session,
                    event.run_id,
                    event.plan_id,
                    event.tier.value,
                    json.dumps(list(event.command)),
                    int(event.full),
                    event.mlflow_run_id,
                    event.at,
                    commit,
                ),
            )
            assert cursor.lastrowid is not None
            self._rows[event.run_id] = cursor.lastrowid
            if event.tier.value == "model":
                self._model_row = cursor.lastrowid
                self._model_commit = commit
        elif isinstance(event, TierFinished):
            self._finish(event)
        else:
            results = [
                {
                    "gate": r.gate,
                    "check": r.check,
                    "passed": r.passed,
                    "value": r.value,
                    "threshold": r.threshold,
                    "reason": r.reason,
                    "details": list(r.details),
                }
                for r in event.results
            ]
            conn.execute(
                "INSERT INTO gate_reports (session, tier_run, at, passed, model_uri, baseline, results, git_commit,"
                " event) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    self.session,
                    self._model_row,
                    event.at,
                    int(event.passed),
                    event.model_uri,
                    event.baseline,
                    json.dumps(results),
                    self._model_commit or head_commit(self.root),
                    json.dumps(event_to_json(event)),
                ),
            )

    def _finish(self, event: TierFinished) -> None:
        conn = self._conn
        row = self._rows.pop(event.run_id, None)
        if row is None:  # a held tier never started: it gets its row now
            cursor = conn.execute(
                "INSERT INTO tier_runs (session, run_id, plan_id, tier) VALUES (?,?,?,?)",
                (self.session, event.run_id, event.plan_id, event.tier.value),
            )
            assert cursor.lastrowid is not None
            row = cursor.lastrowid
        conn.execute(
            "UPDATE tier_runs SET finished=?, verdict=?, duration=?, passed=?, failed=?, reason=? WHERE id=?",
            (event.at, event.verdict.value, event.duration_s, event.passed, event.failed, event.reason, row),
        )
        results = self._results.pop(event.run_id, [])
        conn.executemany(
            "INSERT INTO test_results (tier_run, nodeid, outcome, duration, longrepr) VALUES (?,?,?,?,?)",
            [(row, r.nodeid, r.outcome.value, r.duration_s, r.longrepr) for r in results],
        )


def read_last_plans(root: Path, limit: int = 10) -> list[PlanRecord]:
    """The last `limit` plans (newest first) with their runs; empty when there is no history yet."""
    path = root / HISTORY_FILE
    if not path.is_file():
        return []
    conn = _connect(path)
    try:
        plans = conn.execute(
            "SELECT session, plan_id, at, tiers, triggers, stages, changed FROM plans ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        out = []
        for session, plan_id, at, tiers, triggers, stages, changed in plans:
            out.append(
                PlanRecord(
                    plan_id=plan_id,
                    at=at,
                    tiers=tuple(json.loads(tiers)),
                    triggers=tuple(_trigger(t) for t in json.loads(triggers)),
                    stages=tuple(json.loads(stages)),
                    changed=tuple(json.loads(changed)),
                    runs=_runs(conn, session, plan_id),
                )
            )
        return out
    finally:
        conn.close()


def _trigger(data: dict[str, object]) -> Trigger:
    from mlci.engine.events import Tier

    paths = data.get("paths", [])
    return Trigger(
        Tier(str(data["tier"])), str(data["rule"]), tuple(str(p) for p in paths) if isinstance(paths, list) else ()
    )


def _runs(conn: sqlite3.Connection, session: str, plan_id: int) -> tuple[RunRecord, ...]:
    rows = conn.execute(
        "SELECT id, tier, verdict, duration, passed, failed, reason, started FROM tier_runs"
        " WHERE session=? AND plan_id=? ORDER BY id",
        (session, plan_id),
    ).fetchall()
    runs = []
    for row_id, tier, verdict, duration, passed, failed, reason, started in rows:
        failed_tests = tuple(
            r[0]
            for r in conn.execute(
                "SELECT nodeid FROM test_results WHERE tier_run=? AND outcome IN ('failed','error') ORDER BY id",
                (row_id,),
            )
        )
        runs.append(RunRecord(tier, verdict, duration, passed, failed, reason, started, failed_tests))
    return tuple(runs)
