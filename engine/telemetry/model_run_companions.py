"""What runs beside the model tier while it trains: the live metric followers and the GPU logger.

All key off the event stream itself: a model-tier `TierStarted` that carries the MLflow
run id starts the MLflow follower and the GPU logger, its `TierFinished` stops them. Because
the session feeds every event through here, the headless CLI and the dashboard get the
same live metrics, and the run gets the same GPU system metrics, whoever is watching.

A project that logs with DVCLive gets its files followed too (`DvcLiveFollower`), beside the
MLflow run (same run id: the same curves) or instead of it in a project without MLflow; and
once such a project's model tier finishes, its DVC metrics and plots are read again
(`DvcMetrics`), since the stages have just rewritten them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from mlci.engine.events import DVCLIVE_RUN_PREFIX, Event, GpuSample, Notice, Tier, TierFinished, TierStarted
from mlci.engine.telemetry.dvclive_follower import DvcLiveFollower, dvclive_dirs
from mlci.engine.telemetry.gpu.mlflow_log import GpuRunLogger
from mlci.engine.telemetry.live_metrics import MetricFollower

__all__ = ["ModelRunCompanions"]


class ModelRunCompanions:
    """Starts and stops the per-run helpers as the model tier starts and finishes."""

    def __init__(
        self,
        tracking_uri: str,
        emit: Callable[[Event], None],
        *,
        root: Path | None = None,
        mlflow_used: bool = True,
        main_branch: str = "main",
    ) -> None:
        """`root`: the project, for its DVCLive files and DVC metrics (None: MLflow only)."""
        self._tracking_uri = tracking_uri
        self._emit = emit
        self._root = root
        self._mlflow_used = mlflow_used
        self._main_branch = main_branch
        self._lock = threading.Lock()
        self._follower: MetricFollower | None = None
        self._gpu_logger: GpuRunLogger | None = None
        self._dvclive: DvcLiveFollower | None = None

    def observe(self, event: Event) -> None:
        """Look at one event from the stream (any thread)."""
        if isinstance(event, GpuSample):
            with self._lock:
                logger = self._gpu_logger
            if logger is not None:
                logger.log(event)
        elif isinstance(event, TierStarted) and event.tier is Tier.MODEL:
            if event.mlflow_run_id:
                self._start(event.mlflow_run_id)
            self._start_dvclive(event.mlflow_run_id)
        elif isinstance(event, TierFinished) and event.tier is Tier.MODEL:
            self.stop()
            self._refresh_dvc_metrics()

    def _start_dvclive(self, mlflow_run_id: str) -> None:
        if self._root is None:
            return
        dirs = dvclive_dirs(self._root)
        if not dirs:
            return
        run_id = mlflow_run_id or f"{DVCLIVE_RUN_PREFIX}{dirs[0].relative_to(self._root).as_posix()}"
        follower = DvcLiveFollower(dirs, run_id, self._emit)
        with self._lock:
            previous, self._dvclive = self._dvclive, follower
        if previous is not None:
            previous.stop()
        follower.start()

    def _refresh_dvc_metrics(self) -> None:
        """In a project without MLflow, the DVC metrics and plots the stages just wrote, read off this thread."""
        root = self._root
        if root is None or self._mlflow_used or not (root / "dvc.yaml").is_file():
            return
        from mlci.engine.telemetry.dvc_metrics import read_dvc_metrics_event

        def read() -> None:
            self._emit(read_dvc_metrics_event(root, self._main_branch))

        threading.Thread(target=read, name="mlci-dvc-metrics", daemon=True).start()

    def _start(self, run_id: str) -> None:
        self.stop()
        follower = MetricFollower(self._tracking_uri, run_id, self._emit)
        with self._lock:
            self._follower = follower
            self._gpu_logger = GpuRunLogger(self._tracking_uri, run_id)
        follower.start()

    def stop(self) -> None:
        """Stop following (after one last poll) and write the buffered GPU figures."""
        with self._lock:
            follower, self._follower = self._follower, None
            logger, self._gpu_logger = self._gpu_logger, None
            dvclive, self._dvclive = self._dvclive, None
        if follower is not None:
            follower.stop()
        if dvclive is not None:
            dvclive.stop()
        if logger is not None:
            logger.close()
            if logger.error:
                self._emit(Notice("warning", logger.error, source="gpu"))
