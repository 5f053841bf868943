"""The GPU sampler interface, and the choice between NVML and a recording.

Everything that shows GPU figures (the monitor thread, `mlci gpu`, the MLflow logger) sees
only `GpuSampler`, so tests and demos feed recorded samples through the same path that NVML
samples take on real hardware.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Protocol

from mlci.engine.events import GpuSample

__all__ = ["RECORDING_ENV", "GpuSampler", "open_sampler", "recording_path"]

RECORDING_ENV = "MLCI_GPU_RECORDING"
"""A JSON-lines recording of GPU samples to replay instead of asking NVML."""


class GpuSampler(Protocol):
    """Takes one sample of every GPU. Implementations never raise for a missing or failing GPU:
    they say why in `GpuSample.status` (no GPU at all) or `GpuDevice.status` (one device)."""

    def sample(self) -> GpuSample:
        """Every GPU's figures now."""
        ...

    def close(self) -> None:
        """Release the driver; the sampler is not used afterwards."""
        ...


def recording_path() -> Path | None:
    """The recording named by `MLCI_GPU_RECORDING`, if any."""
    value = os.environ.get(RECORDING_ENV, "").strip()
    return Path(value) if value else None


def open_sampler(our_pgids: Callable[[], Collection[int]] = frozenset) -> GpuSampler:
    """The sampler mlci uses: the recording in `MLCI_GPU_RECORDING` when set, NVML otherwise.

    Cheap: NVML itself is loaded on the first sample, which the monitor takes off the UI thread.
    Raises ConfigError when the recording cannot be read.

    Args:
        our_pgids: The process groups of the tiers mlci is running (their GPU processes are
            marked as ours). A recording keeps the marks it was recorded with.
    """
    path = recording_path()
    if path is not None:
        from mlci.engine.telemetry.gpu.recorded import RecordedSampler

        return RecordedSampler(path)
    from mlci.engine.telemetry.gpu.nvml import NvmlSampler

    return NvmlSampler(our_pgids)
