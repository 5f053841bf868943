"""The GPU monitor: a background thread that samples once a second and emits each sample.

Sampling happens on this thread only, never on the UI thread: NVML calls are cheap while the
GPU is healthy, but a device that stops answering can hold a call for seconds. The thread is a
daemon, so a call stuck in the driver never keeps the app from quitting.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from mlci.engine.events import GpuSample
from mlci.engine.telemetry.gpu.sampler import GpuSampler

__all__ = ["GpuMonitor"]


class GpuMonitor:
    """Samples `sampler` every `interval_s` seconds on its own thread and passes each sample to `emit`.

    `emit` is called on the monitor's thread: a UI must hand the sample over to its own thread
    (Textual: `post_message`, which is thread-safe). A sampler that raises becomes a sample
    whose status says so, and the monitor keeps going; the sampler is closed on this thread
    when the monitor stops.
    """

    def __init__(self, sampler: GpuSampler, emit: Callable[[GpuSample], None], *, interval_s: float = 1.0) -> None:
        self._sampler = sampler
        self._emit = emit
        self._interval_s = interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start sampling; the first sample is emitted at once."""
        if self._thread is not None:
            raise RuntimeError("a GpuMonitor starts once")
        self._thread = threading.Thread(target=self._run, name="mlci-gpu-monitor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop sampling and wait up to `timeout` seconds for the thread (it may be stuck in the driver)."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                sample = self._sample()
                if self._stopping.is_set():
                    break
                # A consumer's failure must not end GPU sampling for everyone else.
                with contextlib.suppress(Exception):
                    self._emit(sample)
                self._stopping.wait(max(0.0, self._interval_s - (time.monotonic() - started)))
        finally:
            # Nothing can be done about a driver that fails to shut down.
            with contextlib.suppress(Exception):
                self._sampler.close()

    def _sample(self) -> GpuSample:
        try:
            return self._sampler.sample()
        except Exception as exc:  # an unexpected driver failure is shown, never raised
            return GpuSample(devices=(), status=f"GPU sampling failed: {type(exc).__name__}: {exc}")
