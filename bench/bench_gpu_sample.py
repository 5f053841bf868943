"""What one GPU sample costs: the sampler, the per-process marking, and the panel's redraw.

Prints microseconds per call (median of batches of N=1000) for:
- `NvmlSampler.sample()` on this machine's real path (here: no NVIDIA library, the
  remembered status), and its first call (loading the binding and trying the driver);
- `NvmlSampler.sample()` over the tests' NVML stand-in with 8 H200s and 4 processes each:
  mlci's own overhead per sample (conversions, process groups, /proc reads), NVML excluded;
- `RecordedSampler.sample()`;
- `is_ours` for one GPU process (a process-group lookup);
- `GpuPanel.update_sample` followed by `render()` at 80 and 160 columns, 2 GPUs.
No GPU is lent to this project's machines, so the real NVML path on hardware is not measured
here; run this script on a GPU machine to get it. Figures only: nothing is asserted.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for the tests' NVML stand-in

from mlci.engine.telemetry.gpu.nvml import NvmlSampler  # noqa: E402
from mlci.engine.telemetry.gpu.processes import is_ours  # noqa: E402
from mlci.engine.telemetry.gpu.recorded import RecordedSampler  # noqa: E402

N = 1000
BATCHES = 5
RECORDINGS = ROOT / "tests" / "data" / "gpu"


def per_call_us(fn: Callable[[], object], n: int = N, batches: int = BATCHES) -> float:
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(times)


def panel_us(width: int) -> float:
    from mlci.tui.components.gpu_panel import GpuPanel
    from textual.app import App, ComposeResult

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield GpuPanel()

    result: list[float] = []

    async def run() -> None:
        app = Host()
        async with app.run_test(size=(width, 30)) as pilot:
            panel = app.query_one(GpuPanel)
            sampler = RecordedSampler(RECORDINGS / "h200x2_multi.jsonl")
            panel.update_sample(sampler.sample())
            await pilot.pause()

            def update() -> None:
                panel.update_sample(sampler.sample())
                panel.render()

            result.append(per_call_us(update))

    asyncio.run(run())
    return result[0]


def main() -> None:
    start = time.perf_counter()
    real = NvmlSampler()
    first = real.sample()
    first_us = (time.perf_counter() - start) * 1e6
    print(f"this machine: {first.status or f'{len(first.devices)} GPU(s)'}")
    print(f"NvmlSampler.sample(), first call (load binding, try driver): {first_us:9.1f} us")
    print(f"NvmlSampler.sample(), this machine's path:                   {per_call_us(real.sample):9.2f} us")
    real.close()

    # Imported only now: it imports the NVML binding, which the first call above must pay for.
    from tests.engine.test_gpu import MIB, FakeNvml, h200

    pids = [os.getpid(), os.getppid(), 1, 999_999]
    devices = [h200(processes=[(pid, 1024 * MIB) for pid in pids]) for _ in range(8)]
    stand_in = NvmlSampler(lambda: {os.getpgid(0)}, nvml=FakeNvml(devices))
    print(f"NvmlSampler.sample(), 8 GPUs x 4 processes, NVML excluded:   {per_call_us(stand_in.sample):9.1f} us")

    recorded = RecordedSampler(RECORDINGS / "h200x2_multi.jsonl")
    print(f"RecordedSampler.sample():                                     {per_call_us(recorded.sample):9.2f} us")
    pgids = {os.getpgid(0)}
    print(
        f"is_ours(pid) (one process-group lookup):                     "
        f"{per_call_us(lambda: is_ours(os.getpid(), pgids)):9.2f} us"
    )
    for width in (80, 160):
        print(f"GpuPanel.update_sample + render, 2 GPUs, {width:3d} columns:       {panel_us(width):9.1f} us")


if __name__ == "__main__":
    main()
