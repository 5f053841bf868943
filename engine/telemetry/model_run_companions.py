"""What runs beside the model tier while it trains: the live metric follower and the GPU logger.

Both key off the event stream itself: a model-tier `TierStarted` that carries the MLflow
run id starts them, its `TierFinished` stops them. Because the session feeds every event
through here, the headless CLI and the dashboard get the same live metrics, and the run
gets the same GPU system metrics, whoever is watching.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from mlci.engine.events import Event, GpuSample, Notice, Tier, TierFinished, TierStarted
from mlci.engine.telemetry.gpu.mlflow_log import GpuRunLogger
from mlci.engine.telemetry.live_metrics import MetricFollower

__all__ = ["ModelRunCompanions"]


class ModelRunCompanions:
    """Starts and stops the per-run helpers as the model tier starts and finishes."""

    def __init__(self, tracking_uri: str, emit: Callable[[Event], None]) -> None:
        self._tracking_uri = tracking_uri
        self._emit = emit
        self._lock = threading.Lock()
        self._follower: MetricFollower | None = None
        self._gpu_logger: GpuRunLogger | None = None

    def observe(self, event: Event) -> None:
        """Look at one event from the stream (any thread)."""
        if isinstance(event, GpuSample):
            with self._lock:
                logger = self._gpu_logger
            if logger is not None:
                logger.log(event)
        elif isinstance(event, TierStarted) and event.tier is Tier.MODEL and event.mlflow_run_id:
            self._start(event.mlflow_run_id)
        elif isinstance(event, TierFinished) and event.tier is Tier.MODEL:
            self.stop()

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
        if follower is not None:
            follower.stop()
        if logger is not None:
            logger.close()
            if logger.error:
                self._emit(Notice("warning", logger.error, source="gpu"))
