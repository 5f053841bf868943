"""`mlci gpu`: one sample of every GPU, or one line saying why there is none (exit 0 either way).

`--json` prints the sample as one `GpuSample` event on one line, the format of a GPU
recording: `mlci gpu --json >> gpu.jsonl` appends a sample to one.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlci.engine.events import GpuSample

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the sample as one JSON line (a GpuSample event)")


def _figure(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def _lines(sample: GpuSample) -> list[str]:
    if not sample.devices:
        return [sample.status]
    lines: list[str] = []
    for d in sample.devices:
        if d.status:
            lines.append(f"GPU {d.index}  {d.name}  {d.status}")
            continue
        memory = "n/a"
        if d.memory_used_mib is not None and d.memory_total_mib:
            share = d.memory_used_mib / d.memory_total_mib * 100
            memory = f"{d.memory_used_mib:.0f}/{d.memory_total_mib:.0f} MiB ({share:.0f}%)"
        lines.append(
            f"GPU {d.index}  {d.name}  util {_figure(d.utilization_pct, '{:.0f}%')}  mem {memory}  "
            f"{_figure(d.temperature_c, '{:.0f}°C')}  "
            f"{_figure(d.power_w, '{:.0f}')}/{_figure(d.power_limit_w, '{:.0f}')} W"
        )
        for p in d.processes:
            mine = "  (model tier)" if p.ours else ""
            lines.append(f"  pid {p.pid}  {p.name or '?'}  {_figure(p.used_memory_mib, '{:.0f} MiB')}{mine}")
        if not d.processes:
            lines.append("  no compute processes")
    return lines


def run(args: argparse.Namespace) -> int:
    from mlci.engine.events import event_to_json
    from mlci.engine.telemetry.gpu.sampler import open_sampler

    sampler = open_sampler()
    try:
        sample = sampler.sample()
    finally:
        sampler.close()
    if args.json:
        print(json.dumps(event_to_json(sample), ensure_ascii=False))
    else:
        print("\n".join(_lines(sample)))
    return 0
