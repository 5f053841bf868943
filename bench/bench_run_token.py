"""Benchmark: what finding and killing a run's escaped processes costs (the /proc scan of `run_token`).

    python bench/bench_run_token.py [--escaped 50] [--rounds 20]

Every tier command ends with a sweep of /proc for its run token, and a kill repeats it while
processes are left, so the scan's cost is paid once per command and a few times per kill.
Printed, with the number of processes on the machine: the median time of one scan when
nothing carries the token (every command's normal end), the same with `--escaped` marked
`setsid sleep` daemons, and the wall time of killing them all. Figures only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time

from mlci.engine.run.process_group import kill_marked
from mlci.engine.run.run_token import marked_processes, new_token, with_token


def _scan_ms(token: str, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        marked_processes(token)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--escaped", type=int, default=50, help="marked setsid daemons to find and kill")
    parser.add_argument("--rounds", type=int, default=20, help="scans per figure (the median is printed)")
    args = parser.parse_args()

    processes = sum(1 for entry in os.listdir("/proc") if entry.isdigit())
    token = new_token()
    print(f"processes on this machine: {processes}")
    print(f"scan, nothing marked:           {_scan_ms(token, args.rounds):8.2f} ms (median of {args.rounds})")
    env = with_token(os.environ, token)
    daemons = [subprocess.Popen(["setsid", "sleep", "1000"], env=env) for _ in range(args.escaped)]
    try:
        deadline = time.monotonic() + 30
        while len(marked_processes(token)) < args.escaped and time.monotonic() < deadline:
            time.sleep(0.05)
        found = len(marked_processes(token))
        print(f"scan, {found:3d} marked:             {_scan_ms(token, args.rounds):8.2f} ms (median of {args.rounds})")
        start = time.perf_counter()
        kill_marked(token)
        killed_ms = (time.perf_counter() - start) * 1000
        left = len(marked_processes(token))
        print(f"kill_marked of {found} daemons:    {killed_ms:8.2f} ms wall, {left} left")
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.kill()
            daemon.wait()


if __name__ == "__main__":
    main()
