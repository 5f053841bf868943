"""GPU figures as MLflow system metrics of the model tier's run.

The names are the ones MLflow's own system-metrics monitor uses
(`mlflow/system_metrics/metrics/gpu_monitor.py`: "system/gpu_0_utilization_percentage" and so
on, memory in megabytes of 10^6 bytes), so the run's "System metrics" tab in the MLflow UI shows
them next to the training metrics. Temperature, which MLflow's monitor does not record, is added
under the same prefix. A device that stopped answering, or a figure it does not support, is
left out rather than logged as zero.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from mlci.engine.events import GpuDevice, GpuSample

__all__ = ["GpuRunLogger", "gpu_system_metrics", "log_gpu_sample"]

_PREFIX = "system/"
_MIB_IN_MB = 1024 * 1024 / 1e6
_BATCH_MAX = 1000
"""MLflow's limit on metrics per log_batch call."""


def _device_metrics(device: GpuDevice) -> Iterator[tuple[str, float]]:
    key = f"{_PREFIX}gpu_{device.index}_"
    if device.utilization_pct is not None:
        yield key + "utilization_percentage", device.utilization_pct
    if device.memory_used_mib is not None:
        yield key + "memory_usage_megabytes", round(device.memory_used_mib * _MIB_IN_MB, 1)
        if device.memory_total_mib:
            yield key + "memory_usage_percentage", round(device.memory_used_mib / device.memory_total_mib * 100, 1)
    if device.power_w is not None:
        yield key + "power_usage_watts", device.power_w
        if device.power_limit_w:
            yield key + "power_usage_percentage", round(device.power_w / device.power_limit_w * 100, 1)
    if device.temperature_c is not None:
        yield key + "temperature_celsius", device.temperature_c


def gpu_system_metrics(sample: GpuSample) -> dict[str, float]:
    """The sample's figures under MLflow's system-metric names; empty when there is no GPU."""
    return {name: value for device in sample.devices if not device.status for name, value in _device_metrics(device)}


def log_gpu_sample(client: Any, run_id: str, sample: GpuSample, step: int) -> None:
    """Log one sample to `run_id` through an `MlflowClient`, at `step` and the sample's time."""
    _write(client, run_id, [(step, sample)])


def _write(client: Any, run_id: str, samples: list[tuple[int, GpuSample]]) -> None:
    from mlflow.entities import Metric

    metrics = [
        Metric(key, value, int(sample.at * 1000), step)
        for step, sample in samples
        for key, value in gpu_system_metrics(sample).items()
    ]
    for start in range(0, len(metrics), _BATCH_MAX):
        client.log_batch(run_id, metrics=metrics[start : start + _BATCH_MAX])


class GpuRunLogger:
    """Logs GPU samples into the model tier's MLflow run while it runs, in batches.

    Call `log` with every sample (from the monitor's thread is fine) and `close` when the tier
    ends. Samples are buffered and written every `flush_every` samples, so the MLflow store sees
    one write every ~10 s rather than one a second. A store that refuses a write never stops
    the tier: the reason is kept in `error` for the session to show, and logging stops.

    Args:
        tracking_uri: The MLflow tracking URI of the run.
        run_id: The model tier's MLflow run.
        flush_every: Samples per batch written to the store.
        client: An `MlflowClient` to use instead of one made from `tracking_uri`.
    """

    def __init__(self, tracking_uri: str, run_id: str, *, flush_every: int = 10, client: Any = None) -> None:
        self.tracking_uri = tracking_uri
        self.run_id = run_id
        self.error: str | None = None
        """Why logging stopped (the store refused a write), or None while it works."""
        self._flush_every = max(1, flush_every)
        self._client = client
        self._pending: list[tuple[int, GpuSample]] = []
        self._step = 0
        self._lock = threading.Lock()

    def log(self, sample: GpuSample) -> None:
        """Buffer one sample (skipped when it has no figures), writing the batch when it is full."""
        if not sample.devices:
            return
        with self._lock:
            if self.error is not None:
                return
            self._pending.append((self._step, sample))
            self._step += 1
            if len(self._pending) >= self._flush_every:
                self._flush_locked()

    def close(self) -> None:
        """Write whatever is buffered."""
        with self._lock:
            if self.error is None:
                self._flush_locked()

    def _flush_locked(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            _write(self._client_locked(), self.run_id, pending)
        except Exception as exc:  # the store is down or the run is gone: say so, keep the tier running
            self.error = f"GPU metrics not logged to MLflow run {self.run_id}: {exc}"

    def _client_locked(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client
