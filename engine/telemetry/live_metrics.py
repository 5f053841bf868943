"""Follow an MLflow run's metrics while it trains, and emit each new value once, as a MetricPoint.

The model tier creates the run and hands its id to the training script (`MLFLOW_RUN_ID`);
`MetricFollower` polls that run from a thread. It works with any tracking store MLflow's
client speaks to (`mlflow server`, a file store), asking only for the histories of metrics
whose latest value moved; a sqlite store it reads directly (`mlflow_sqlite`: a few rows, no
MLflow import in the dashboard). It emits only the steps it has not emitted yet.

A store that cannot be reached is a Notice ("MLflow tracking store unreachable: ..."),
said once per outage; the follower keeps trying, backing off up to `max_backoff_s`, says
when the store is back, and never raises into its caller.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any

from mlci.engine.config.mlflow_sqlite import metric_rows
from mlci.engine.config.tracking_store import quiet_mlflow, sqlite_path, unreachable_reason
from mlci.engine.events import Event, MetricPoint, Notice

__all__ = ["NOTICE_SOURCE", "MetricFollower"]

NOTICE_SOURCE = "metrics"
"""The `source` of this module's notices: the metrics panel shows them."""
TRANSIENT_FAILURES = 3
"""Consecutive failed polls of a reachable store (sqlite busy, a 5xx) before they count as an outage."""


class _Unreachable(Exception):
    pass


class MetricFollower:
    """Polls one MLflow run's metric history and emits new points; `start()` it, `stop()` it.

    `emit` is called from the follower's own thread (a consumer that is a UI posts a message).
    """

    def __init__(
        self,
        tracking_uri: str,
        run_id: str,
        emit: Callable[[Event], None],
        *,
        interval_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self._emit = emit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._emitted: dict[str, tuple[int, int]] = {}
        """Metric key -> (timestamp, step) of the last point emitted."""
        self._latest: dict[str, tuple[int, int]] = {}
        """Metric key -> (timestamp, step) of the latest value the run reported last poll."""
        self._failures = 0
        self._down = False
        self.polls = 0
        """Polls that reached the store, so far."""

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name=f"mlci-metrics-{self.run_id[:8]}", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop following, after one last poll so that the final epoch is not lost."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        delay = self.interval_s
        while True:
            stopping = self._stop.is_set()
            ok = self._guarded_poll()
            if stopping:
                return
            delay = self.interval_s if ok else min(max(delay, self.interval_s) * 2, self.max_backoff_s)
            self._stop.wait(delay)

    def _guarded_poll(self) -> bool:
        try:
            self.poll_once()
        except _Unreachable as exc:
            self._outage(str(exc))
            return False
        except Exception as exc:  # any client error: retried; reported when it persists
            self._failures += 1
            if self._failures >= TRANSIENT_FAILURES:
                self._outage(f"{type(exc).__name__}: {exc}")
            return False
        if self._down:
            self._emit(Notice("info", "MLflow tracking store reachable again", NOTICE_SOURCE))
        self._down = False
        self._failures = 0
        self.polls += 1
        return True

    def _outage(self, reason: str) -> None:
        if not self._down:
            self._emit(Notice("warning", f"MLflow tracking store unreachable: {reason}", NOTICE_SOURCE))
        self._down = True

    # -- polling --------------------------------------------------------------------------------

    def _get_client(self) -> Any:
        if self._client is None:
            quiet_mlflow()
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def _changed_keys(self, run: Any) -> list[tuple[str, tuple[int, int] | None]]:
        """(key, its latest mark) for keys whose latest (timestamp, step) moved; every key if the run won't say."""
        latest_objs = getattr(run.data, "_metric_objs", None)
        if latest_objs is None:
            return [(key, None) for key in sorted(run.data.metrics)]
        marks = {m.key: (int(m.timestamp), int(m.step)) for m in latest_objs}
        return [(key, mark) for key, mark in sorted(marks.items()) if self._latest.get(key) != mark]

    def poll_once(self) -> int:
        """Emit every point logged since the last poll; the number emitted. Raises when the store fails."""
        reason = unreachable_reason(self.tracking_uri)
        if reason is not None:
            raise _Unreachable(reason)
        db = sqlite_path(self.tracking_uri)
        if db is not None:
            try:
                rows = metric_rows(db, self.run_id)
            except sqlite3.Error:
                pass  # a schema these queries do not know, or a write holding the file: MLflow's client below
            else:
                return self._emit_new((row.key, row.timestamp, row.step, row.value) for row in rows)
        client = self._get_client()
        run = client.get_run(self.run_id)
        emitted = 0
        for key, latest in self._changed_keys(run):
            history = client.get_metric_history(self.run_id, key)
            emitted += self._emit_new((m.key, int(m.timestamp), int(m.step), float(m.value)) for m in history)
            if latest is not None:
                self._latest[key] = latest  # only once its history is in: a failed fetch is retried
        return emitted

    def _emit_new(self, points: Iterable[tuple[str, int, int, float]]) -> int:
        """Emit the (key, timestamp, step, value) points later than the last one emitted of their key, each key's
        in the order they were logged; the number emitted."""
        emitted = 0
        for key, timestamp, step, value in sorted(points, key=lambda p: (p[0], p[1], p[2])):
            mark = (timestamp, step)
            last = self._emitted.get(key)
            if last is not None and mark <= last:
                continue
            self._emit(MetricPoint(self.run_id, key, step, value, timestamp))
            self._emitted[key] = mark
            emitted += 1
        return emitted
