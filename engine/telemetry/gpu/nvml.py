"""The NVML sampler: every GPU's figures and compute processes, through nvidia-ml-py.

nvidia-ml-py is NVIDIA's own binding; it installs a module named `pynvml` (the PyPI package
called `pynvml` is a deprecated wrapper and is not used). The module is imported on the first
sample, so constructing a sampler costs nothing and the CLI and TUI start without it.

Each way NVML can fail becomes one status line and never an exception: the binding or the
driver library missing, the driver not loaded, no device, and a device that stops answering
(that device's figures become None and it carries the reason; the others keep reporting).
A figure the device does not support is None on its own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection
from typing import Any

from mlci.engine.events import GpuDevice, GpuProcess, GpuSample
from mlci.engine.telemetry.gpu.processes import command_line, is_ours

__all__ = [
    "STATUS_NO_BINDING",
    "STATUS_NO_DEVICE",
    "STATUS_NO_DRIVER",
    "STATUS_NO_LIBRARY",
    "NvmlSampler",
]

STATUS_NO_BINDING = "no GPU: the NVML binding is not installed (pip install nvidia-ml-py)"
STATUS_NO_LIBRARY = "no GPU: NVIDIA driver library (libnvidia-ml.so.1) not found"
STATUS_NO_DRIVER = "no GPU: NVIDIA driver not loaded"
STATUS_NO_DEVICE = "no GPU: the NVIDIA driver is loaded but sees no device"

_MIB = 1024 * 1024

_UNANSWERED = ("NVMLError_GpuIsLost", "NVMLError_Unknown", "NVMLError_Timeout", "NVMLError_ResetRequired")
"""NVML errors that mean the device itself stopped answering, as opposed to one unsupported figure."""


class _Unanswered(Exception):
    """A device stopped answering in the middle of a sample."""


class NvmlSampler:
    """Samples every GPU through NVML; one instance keeps NVML initialised and its device handles.

    Args:
        our_pgids: The process groups of the tiers mlci is running now (called once per sample);
            a GPU process in one of them is marked as ours.
        nvml: The NVML module to use; None imports nvidia-ml-py's `pynvml` on the first sample.
            Tests pass a stand-in here, since no GPU is lent to them.
        retry_s: How long a failed start (no driver, no device) is remembered before NVML is
            tried again, so a driver loaded later is picked up without paying for a retry
            every second.
    """

    def __init__(
        self,
        our_pgids: Callable[[], Collection[int]] = frozenset,
        *,
        nvml: Any = None,
        retry_s: float = 30.0,
    ) -> None:
        self._our_pgids = our_pgids
        self._nvml = nvml
        self._retry_s = retry_s
        self._handles: list[Any] | None = None
        """One handle per device index (None where getting it failed); None until NVML started."""
        self._names: dict[int, str] = {}
        """Device names, kept so a device that stops answering is still shown by name."""
        self._status = ""
        self._retry_at = 0.0

    def sample(self) -> GpuSample:
        """Every device's figures now, or an empty sample whose status says why there are none."""
        if self._handles is None:
            if self._status and time.monotonic() < self._retry_at:
                return GpuSample(devices=(), status=self._status)
            self._status = self._start()
            if self._status:
                self._retry_at = time.monotonic() + self._retry_s
                return GpuSample(devices=(), status=self._status)
        assert self._handles is not None
        pgids = frozenset(self._our_pgids())
        return GpuSample(devices=tuple(self._device(i, h, pgids) for i, h in enumerate(self._handles)))

    def close(self) -> None:
        """Shut NVML down (it is reference-counted, so other users in the process are unaffected)."""
        if self._handles is None or self._nvml is None:
            return
        self._handles = None
        self._shutdown()

    def _shutdown(self) -> None:
        # Shutting down with a lost device can fail; there is nothing left to release then.
        with contextlib.suppress(self._nvml.NVMLError):
            self._nvml.nvmlShutdown()

    def _start(self) -> str:
        """Load and initialise NVML and take the device handles; "" when ready, else the status."""
        if self._nvml is None:
            try:
                import pynvml
            except ImportError:
                return STATUS_NO_BINDING
            self._nvml = pynvml
        nvml = self._nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            return _start_status(nvml, exc)
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            self._shutdown()
            return _start_status(nvml, exc)
        if count == 0:
            self._shutdown()
            return STATUS_NO_DEVICE
        self._handles = [self._handle(i) for i in range(count)]
        return ""

    def _handle(self, index: int) -> Any:
        try:
            return self._nvml.nvmlDeviceGetHandleByIndex(index)
        except self._nvml.NVMLError:
            return None  # reported as a device that does not answer, on every sample

    def _device(self, index: int, handle: Any, pgids: frozenset[int]) -> GpuDevice:
        nvml = self._nvml
        try:
            if handle is None:
                raise _Unanswered("no handle from the driver")
            name = self._read(nvml.nvmlDeviceGetName, handle)
            if name:
                self._names[index] = str(name)
            rates = self._read(nvml.nvmlDeviceGetUtilizationRates, handle)
            # The rates' `memory` field is memory-bus activity; memory in use comes from the memory info.
            memory = self._read(nvml.nvmlDeviceGetMemoryInfo, handle)
            temperature = self._read(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
            power_mw = self._read(nvml.nvmlDeviceGetPowerUsage, handle)
            limit_mw = self._read(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
            running = self._read(nvml.nvmlDeviceGetComputeRunningProcesses, handle) or ()
        except _Unanswered as exc:
            return GpuDevice(
                index=index,
                name=self._names.get(index, f"GPU {index}"),
                utilization_pct=None,
                memory_used_mib=None,
                memory_total_mib=None,
                temperature_c=None,
                power_w=None,
                power_limit_w=None,
                status=f"stopped answering ({exc})",
            )
        return GpuDevice(
            index=index,
            name=self._names.get(index, f"GPU {index}"),
            utilization_pct=None if rates is None else float(rates.gpu),
            memory_used_mib=None if memory is None else memory.used / _MIB,
            memory_total_mib=None if memory is None else memory.total / _MIB,
            temperature_c=None if temperature is None else float(temperature),
            power_w=None if power_mw is None else power_mw / 1000.0,
            power_limit_w=None if limit_mw is None else limit_mw / 1000.0,
            processes=self._processes(running, pgids),
        )

    def _processes(self, running: Any, pgids: frozenset[int]) -> tuple[GpuProcess, ...]:
        seen: set[int] = set()
        out: list[GpuProcess] = []
        for info in running:
            pid = int(info.pid)
            if pid in seen:  # MIG lists a process once per instance it uses
                continue
            seen.add(pid)
            used = getattr(info, "usedGpuMemory", None)
            out.append(
                GpuProcess(
                    pid=pid,
                    used_memory_mib=None if used is None else used / _MIB,
                    name=command_line(pid) or self._nvml_process_name(pid),
                    ours=is_ours(pid, pgids),
                )
            )
        return tuple(out)

    def _nvml_process_name(self, pid: int) -> str:
        """NVML's name for a process that /proc does not show (another PID namespace, another OS)."""
        try:
            return str(self._nvml.nvmlSystemGetProcessName(pid))
        except self._nvml.NVMLError:
            return ""

    def _read(self, getter: Callable[..., Any], *args: Any) -> Any:
        """One NVML figure: None when unsupported or refused; raises _Unanswered when the device is gone."""
        try:
            return getter(*args)
        except self._nvml.NVMLError as exc:
            if any(isinstance(exc, getattr(self._nvml, name, ())) for name in _UNANSWERED):
                raise _Unanswered(str(exc)) from exc
            return None


def _start_status(nvml: Any, exc: Exception) -> str:
    """The status line for an NVML start that failed."""
    if isinstance(exc, nvml.NVMLError_LibraryNotFound):
        return STATUS_NO_LIBRARY
    if isinstance(exc, nvml.NVMLError_DriverNotLoaded):
        return STATUS_NO_DRIVER
    if isinstance(exc, nvml.NVMLError_NoPermission):
        return "no GPU: no permission to query the NVIDIA driver"
    if isinstance(exc, nvml.NVMLError_LibRmVersionMismatch):
        return "no GPU: the NVIDIA driver and its library differ in version (reload the driver or reboot)"
    return f"no GPU: NVML did not start ({exc})"
