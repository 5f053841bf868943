"""GPU sampling: NVML's failure modes, per-process marking, recordings, the monitor thread, `mlci gpu`.

No GPU is lent to these tests, so NVML's device side is replaced by `FakeNvml`: a stand-in
for nvidia-ml-py's `pynvml` module that raises the binding's real error classes. Everything
around it (process groups, /proc, threads, the CLI) is real.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml as real_nvml
import pytest
from mlci.engine.errors import ConfigError
from mlci.engine.events import GpuSample
from mlci.engine.telemetry.gpu.monitor import GpuMonitor
from mlci.engine.telemetry.gpu.nvml import (
    STATUS_NO_BINDING,
    STATUS_NO_DEVICE,
    STATUS_NO_DRIVER,
    STATUS_NO_LIBRARY,
    NvmlSampler,
)
from mlci.engine.telemetry.gpu.recorded import RecordedSampler
from mlci.engine.telemetry.gpu.sampler import RECORDING_ENV, open_sampler

RECORDINGS = Path(__file__).resolve().parent.parent / "data" / "gpu"
MIB = 1024 * 1024


def _nvml_library_present() -> bool:
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return False
    return True


def h200(**overrides: Any) -> dict[str, Any]:
    """One device's figures in NVML's units (bytes, milliwatts), shaped like an H200 in training."""
    device: dict[str, Any] = {
        "name": "NVIDIA H200",
        "util": 87,
        "bus": 41,  # utilisation rates' `memory` field: memory-bus activity, not memory in use
        "used": 61440 * MIB,
        "total": 143771 * MIB,
        "temperature": 62,
        "power_mw": 512_000,
        "limit_mw": 700_000,
        "processes": [],
        "errors": {},
        "lost": None,
    }
    device.update(overrides)
    return device


class FakeNvml:
    """The slice of nvidia-ml-py's `pynvml` module that NvmlSampler uses, over recorded figures.

    `errors` maps a figure to the NVML error code its getter raises; `lost` is an error code
    that every call on the device raises (a device that stopped answering).
    """

    NVML_TEMPERATURE_GPU = real_nvml.NVML_TEMPERATURE_GPU

    def __init__(self, devices: list[dict[str, Any]] | None = None, init_error: int | None = None) -> None:
        self.devices = devices if devices is not None else [h200()]
        self.init_error = init_error
        self.init_calls = 0
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        self.init_calls += 1
        if self.init_error is not None:
            raise real_nvml.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def _figure(self, handle: int, key: str) -> Any:
        device = self.devices[handle]
        code = device["lost"] or device["errors"].get(key)
        if code is not None:
            raise real_nvml.NVMLError(code)
        return device[key]

    def nvmlDeviceGetName(self, handle: int) -> str:
        return str(self._figure(handle, "name"))

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._figure(handle, "util"), memory=self._figure(handle, "bus"))

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        used, total = self._figure(handle, "used"), self._figure(handle, "total")
        return SimpleNamespace(used=used, total=total, free=total - used)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == real_nvml.NVML_TEMPERATURE_GPU
        return int(self._figure(handle, "temperature"))

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return int(self._figure(handle, "power_mw"))

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return int(self._figure(handle, "limit_mw"))

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in self._figure(handle, "processes")]

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        raise real_nvml.NVMLError(real_nvml.NVML_ERROR_NOT_FOUND)


for _name in dir(real_nvml):
    if _name.startswith("NVMLError"):
        setattr(FakeNvml, _name, getattr(real_nvml, _name))


# --- the binding ---------------------------------------------------------------------------


def test_nvml_comes_from_nvidia_ml_py_not_the_deprecated_pynvml_package() -> None:
    assert importlib.metadata.packages_distributions()["pynvml"] == ["nvidia-ml-py"]
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("pynvml")


def test_this_machine_gets_a_status_line_not_an_exception() -> None:
    sampler = NvmlSampler()
    sample = sampler.sample()
    sampler.close()
    if not _nvml_library_present():
        assert sample == GpuSample(devices=(), status=STATUS_NO_LIBRARY, at=sample.at)
    elif not sample.devices:
        assert sample.status.startswith("no GPU: ")


def test_binding_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` raise ImportError
    assert NvmlSampler().sample().status == STATUS_NO_BINDING


# --- NVML failure modes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (real_nvml.NVML_ERROR_LIBRARY_NOT_FOUND, STATUS_NO_LIBRARY),
        (real_nvml.NVML_ERROR_DRIVER_NOT_LOADED, STATUS_NO_DRIVER),
        (real_nvml.NVML_ERROR_NO_PERMISSION, "no GPU: no permission to query the NVIDIA driver"),
        (
            real_nvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH,
            "no GPU: the NVIDIA driver and its library differ in version (reload the driver or reboot)",
        ),
        (
            real_nvml.NVML_ERROR_OPERATING_SYSTEM,
            "no GPU: NVML did not start (The operating system has blocked the request.)",
        ),
    ],
)
def test_nvml_that_does_not_start_is_one_status_line(code: int, status: str) -> None:
    sample = NvmlSampler(nvml=FakeNvml(init_error=code)).sample()
    assert sample.devices == ()
    assert sample.status == status


def test_driver_without_devices() -> None:
    nvml = FakeNvml(devices=[])
    sample = NvmlSampler(nvml=nvml).sample()
    assert (sample.devices, sample.status) == ((), STATUS_NO_DEVICE)
    assert nvml.shutdowns == 1


def test_failed_start_is_remembered_then_retried_so_a_driver_loaded_later_shows_up() -> None:
    nvml = FakeNvml(init_error=real_nvml.NVML_ERROR_DRIVER_NOT_LOADED)
    patient = NvmlSampler(nvml=nvml, retry_s=3600)
    for _ in range(5):
        assert patient.sample().status == STATUS_NO_DRIVER
    assert nvml.init_calls == 1

    eager = NvmlSampler(nvml=nvml, retry_s=0)
    assert eager.sample().status == STATUS_NO_DRIVER
    nvml.init_error = None  # the driver is loaded
    sample = eager.sample()
    assert sample.status == ""
    assert [d.name for d in sample.devices] == ["NVIDIA H200"]


def test_figures_are_converted_and_memory_comes_from_the_memory_info() -> None:
    nvml = FakeNvml([h200(), h200(name="NVIDIA H200", util=3, used=517 * MIB, power_mw=75_500)])
    sampler = NvmlSampler(nvml=nvml)
    sample = sampler.sample()
    first, second = sample.devices
    assert sample.status == ""
    assert (first.index, first.name, first.utilization_pct) == (0, "NVIDIA H200", 87.0)
    assert (first.memory_used_mib, first.memory_total_mib) == (61440.0, 143771.0)
    assert (first.temperature_c, first.power_w, first.power_limit_w) == (62.0, 512.0, 700.0)
    assert first.status == ""
    assert (second.index, second.utilization_pct, second.memory_used_mib, second.power_w) == (1, 3.0, 517.0, 75.5)
    sampler.close()
    assert nvml.shutdowns == 1


def test_a_figure_the_device_does_not_support_is_none_and_the_rest_still_shows() -> None:
    not_supported = real_nvml.NVML_ERROR_NOT_SUPPORTED
    nvml = FakeNvml(
        [
            h200(
                errors={
                    "temperature": not_supported,
                    "power_mw": not_supported,
                    "processes": real_nvml.NVML_ERROR_NO_PERMISSION,
                }
            )
        ]
    )
    device = NvmlSampler(nvml=nvml).sample().devices[0]
    assert (device.temperature_c, device.power_w, device.processes) == (None, None, ())
    assert (device.utilization_pct, device.memory_used_mib, device.power_limit_w) == (87.0, 61440.0, 700.0)
    assert device.status == ""


@pytest.mark.parametrize(
    ("code", "why"),
    [
        (real_nvml.NVML_ERROR_GPU_IS_LOST, "GPU is lost"),
        (real_nvml.NVML_ERROR_TIMEOUT, "Timeout"),
        (real_nvml.NVML_ERROR_UNKNOWN, "Unknown Error"),
    ],
)
def test_a_device_that_stops_answering_keeps_its_name_and_says_why(code: int, why: str) -> None:
    nvml = FakeNvml([h200(), h200(util=35)])
    sampler = NvmlSampler(nvml=nvml)
    assert sampler.sample().devices[1].utilization_pct == 35.0
    nvml.devices[1]["lost"] = code
    healthy, lost = sampler.sample().devices
    assert healthy.utilization_pct == 87.0
    assert lost.name == "NVIDIA H200"
    assert lost.status == f"stopped answering ({why})"
    figures = (
        lost.utilization_pct,
        lost.memory_used_mib,
        lost.memory_total_mib,
        lost.temperature_c,
        lost.power_w,
        lost.power_limit_w,
    )
    assert figures == (None,) * 6


# --- the model tier's processes ----------------------------------------------------------


def test_processes_in_the_tiers_process_group_are_marked_ours_descendants_included() -> None:
    # A "tier": a session leader (its own process group, as the runner starts tiers) with a child.
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    tier = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    try:
        assert tier.stdout is not None
        worker = int(tier.stdout.readline())
        listed = [(tier.pid, 3 * 1024 * MIB), (worker, 512 * MIB), (os.getpid(), 1024 * MIB), (finished.pid, None)]
        sampler = NvmlSampler(lambda: {tier.pid}, nvml=FakeNvml([h200(processes=listed)]))
        processes = {p.pid: p for p in sampler.sample().devices[0].processes}
    finally:
        os.killpg(tier.pid, 9)
        tier.communicate()
    assert processes[tier.pid].ours and processes[worker].ours
    assert not processes[os.getpid()].ours
    assert not processes[finished.pid].ours  # exited: no process group, never ours, no crash
    assert processes[tier.pid].used_memory_mib == 3072.0
    assert processes[finished.pid].used_memory_mib is None
    assert "-c import subprocess" in processes[tier.pid].name
    assert processes[finished.pid].name == ""


def test_nothing_is_ours_while_no_tier_runs() -> None:
    sampler = NvmlSampler(nvml=FakeNvml([h200(processes=[(os.getpid(), MIB)])]))
    (process,) = sampler.sample().devices[0].processes
    assert not process.ours
    assert "pytest" in process.name or "python" in process.name


# --- recordings --------------------------------------------------------------------------


def test_recorded_sampler_replays_a_recording_in_order_then_loops_or_holds() -> None:
    path = RECORDINGS / "h200_training.jsonl"
    recorded = [json.loads(line) for line in path.read_text().splitlines()]
    looping = RecordedSampler(path)
    utilisation = [looping.sample().devices[0].utilization_pct for _ in range(len(recorded) + 1)]
    assert utilisation == [r["devices"][0]["utilization_pct"] for r in recorded] + [0.0]
    holding = RecordedSampler(str(path), loop=False)
    last = [holding.sample() for _ in range(len(recorded) + 2)][-1]
    assert last.devices[0].processes[0].ours
    assert last.devices[0].utilization_pct == recorded[-1]["devices"][0]["utilization_pct"]


def test_a_lost_device_survives_the_recording_round_trip() -> None:
    sampler = RecordedSampler(RECORDINGS / "h200x2_lost.jsonl", loop=False)
    samples = [sampler.sample() for _ in range(8)]
    assert samples[0].devices[1].status == ""
    assert samples[-1].devices[1].status == "stopped answering (GPU is lost)"
    assert samples[-1].devices[1].utilization_pct is None
    assert samples[-1].devices[0].utilization_pct == 96.0


@pytest.mark.parametrize(
    ("content", "where", "why"),
    [
        ('{"type": "GpuSample", "devices": [], "status": "x"}\nnot json\n', ":2:", "not a GpuSample event"),
        ('{"type": "Notice", "level": "info", "text": "hi"}\n', ":1:", 'expected "type": "GpuSample"'),
        ("\n\n", ":", "has no samples"),
    ],
)
def test_a_bad_recording_is_a_config_error_naming_the_line(tmp_path: Path, content: str, where: str, why: str) -> None:
    path = tmp_path / "gpu.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        RecordedSampler(path)
    assert f"{path}{where}" in str(caught.value)
    assert why in str(caught.value)
    assert caught.value.exit_code == 2


def test_open_sampler_replays_the_recording_named_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(RECORDING_ENV, str(RECORDINGS / "h200x2_multi.jsonl"))
    sample = open_sampler().sample()
    assert [d.index for d in sample.devices] == [0, 1]
    monkeypatch.delenv(RECORDING_ENV)
    assert isinstance(open_sampler(), NvmlSampler)


# --- the monitor thread --------------------------------------------------------------------


class _Collector:
    def __init__(self, wanted: int) -> None:
        self.samples: list[GpuSample] = []
        self.threads: set[str] = set()
        self.enough = threading.Event()
        self.wanted = wanted

    def __call__(self, sample: GpuSample) -> None:
        self.samples.append(sample)
        self.threads.add(threading.current_thread().name)
        if len(self.samples) >= self.wanted:
            self.enough.set()


class _Closing(RecordedSampler):
    closed_on: str | None = None

    def close(self) -> None:
        self.closed_on = threading.current_thread().name


def test_monitor_emits_samples_off_the_calling_thread_and_stops_cleanly() -> None:
    sampler = _Closing(RECORDINGS / "h200_training.jsonl")
    collector = _Collector(wanted=5)
    monitor = GpuMonitor(sampler, collector, interval_s=0.01)
    monitor.start()
    assert collector.enough.wait(60)
    monitor.stop(timeout=60)
    assert not monitor.running
    assert collector.threads == {"mlci-gpu-monitor"}
    assert sampler.closed_on == "mlci-gpu-monitor"
    assert [s.devices[0].utilization_pct for s in collector.samples[:3]] == [0.0, 3.0, 35.0]


def test_monitor_survives_a_failing_sampler_and_a_failing_consumer() -> None:
    class Flaky:
        calls = 0

        def sample(self) -> GpuSample:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("driver went away")
            return GpuSample(devices=(), status="no GPU: NVIDIA driver not loaded")

        def close(self) -> None:
            pass

    collector = _Collector(wanted=3)

    def emit(sample: GpuSample) -> None:
        collector(sample)
        raise ValueError("the app is shutting down")

    monitor = GpuMonitor(Flaky(), emit, interval_s=0.01)
    monitor.start()
    assert collector.enough.wait(60)
    monitor.stop(timeout=60)
    assert collector.samples[0].status == "GPU sampling failed: RuntimeError: driver went away"
    assert collector.samples[1].status == "no GPU: NVIDIA driver not loaded"


# --- mlci gpu ------------------------------------------------------------------------------


def _mlci_gpu(*args: str, recording: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != RECORDING_ENV}
    if recording is not None:
        env[RECORDING_ENV] = str(recording)
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", "gpu", *args], capture_output=True, text=True, env=env, check=False
    )


def test_mlci_gpu_without_a_gpu_says_why_and_exits_0() -> None:
    result = _mlci_gpu()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    if not _nvml_library_present():
        assert result.stdout == STATUS_NO_LIBRARY + "\n"


def test_mlci_gpu_json_is_one_gpu_sample_event_a_recording_can_hold(tmp_path: Path) -> None:
    result = _mlci_gpu("--json")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    data = json.loads(result.stdout)
    assert data["type"] == "GpuSample"
    if not _nvml_library_present():
        assert (data["devices"], data["status"]) == ([], STATUS_NO_LIBRARY)
    recording = tmp_path / "gpu.jsonl"
    recording.write_text(result.stdout * 2)
    assert RecordedSampler(recording).sample().status == data["status"]


def test_mlci_gpu_prints_each_gpu_and_marks_the_model_tiers_processes() -> None:
    result = _mlci_gpu(recording=RECORDINGS / "h200x2_multi.jsonl")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "GPU 0  NVIDIA H200  util 40%  mem 22021/143771 MiB (15%)  45°C  267/700 W"
    assert "  pid 4242  python src/credit/train.py --mode quick  20480 MiB  (model tier)" in lines
    assert "  pid 3170  python serve.py --port 8080  1024 MiB" in lines
    assert any(line.startswith("GPU 1  NVIDIA H200  util 22%") for line in lines)
    assert sum("(model tier)" in line for line in lines) == 1


def test_mlci_gpu_shows_a_device_that_stopped_answering(tmp_path: Path) -> None:
    recording = tmp_path / "lost.jsonl"
    recording.write_text((RECORDINGS / "h200x2_lost.jsonl").read_text().splitlines()[-1] + "\n")
    result = _mlci_gpu(recording=recording)
    assert result.returncode == 0, result.stderr
    assert "GPU 1  NVIDIA H200  stopped answering (GPU is lost)" in result.stdout.splitlines()


def test_mlci_gpu_with_an_unreadable_recording_is_a_config_error(tmp_path: Path) -> None:
    result = _mlci_gpu(recording=tmp_path / "missing.jsonl")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "missing.jsonl: cannot read the GPU recording" in result.stderr
    assert "Traceback" not in result.stderr
