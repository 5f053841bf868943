"""The order of the suite under pytest-xdist: the longest modules start first, one per worker.

`make test` runs the suite with `--dist worksteal`, which hands each worker an equal count of
tests, contiguous in collection order, and lets an idle worker steal from the end of the
longest queue. In file order, the long end-to-end modules (the scenario alone takes minutes)
start wherever they happen to fall, often last, and the run ends with one worker busy while
the others wait. Here the modules are dealt to one list per worker, heaviest first (longest
processing time first), each list exactly the size worksteal gives that worker, so every
worker starts with a long module and ends with quick tests that the others can steal.

Module weights come from `tests/durations.json`, seconds per test module as measured by

    .venv/bin/python -m pytest -n 4 --store-durations

A module it does not list weighs `UNKNOWN_S` per test. A module's tests stay together (its
module-scoped fixtures are built once per worker), unless the last lists need it split to
keep their sizes. Only the order changes: every test runs, as without xdist.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
UNKNOWN_S = 1.0
"""The weight of a test in a module `durations.json` does not list yet."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-durations",
        action="store_true",
        help=f"write each test module's total duration to {DURATIONS.name}, for the order of later runs",
    )


def _worker_count(config: pytest.Config) -> int:
    workerinput = getattr(config, "workerinput", None)
    return int(workerinput.get("workercount", 1)) if workerinput else 1


def _range_sizes(total: int, workers: int) -> list[int]:
    """How many tests worksteal hands each worker at the start: an even split, in order."""
    sizes = []
    for remaining_workers in range(workers, 0, -1):
        size = (total - sum(sizes)) // remaining_workers
        sizes.append(size)
    return sizes


def deal(modules: list[tuple[str, list[pytest.Item]]], weights: dict[str, float], workers: int) -> list[pytest.Item]:
    """The tests in an order where each worker's range starts with the heaviest modules dealt to it."""
    sizes = _range_sizes(sum(len(items) for _, items in modules), workers)
    lists: list[list[tuple[float, list[pytest.Item]]]] = [[] for _ in range(workers)]
    load = [0.0] * workers
    room = list(sizes)
    weight_of = {name: weights.get(name, UNKNOWN_S * len(items)) for name, items in modules}
    for name, items in sorted(modules, key=lambda m: -weight_of[m[0]]):
        per_test = weight_of[name] / len(items)
        fits = [w for w in range(workers) if room[w] >= len(items)]
        if fits:
            w = min(fits, key=lambda w: load[w])
            lists[w].append((weight_of[name], items))
            load[w] += weight_of[name]
            room[w] -= len(items)
            continue
        rest = list(items)  # no list has room for all of it: split it over the lists with room
        while rest:
            w = min((w for w in range(workers) if room[w] > 0), key=lambda w: load[w])
            part, rest = rest[: room[w]], rest[room[w] :]
            lists[w].append((per_test * len(part), part))
            load[w] += per_test * len(part)
            room[w] -= len(part)
    ordered: list[pytest.Item] = []
    for dealt in lists:
        for _, items in sorted(dealt, key=lambda m: -m[0]):
            ordered.extend(items)
    return ordered


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workers = _worker_count(config)
    if workers < 2 or not items:
        return
    try:
        weights = {str(k): float(v) for k, v in json.loads(DURATIONS.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError):
        weights = {}
    modules: dict[str, list[pytest.Item]] = defaultdict(list)
    for item in items:
        modules[item.nodeid.split("::", 1)[0]].append(item)
    # Every worker computes the same order from the same collection: xdist checks they agree.
    items[:] = deal(list(modules.items()), weights, workers)


class DurationRecorder:
    """On the controller: adds up each module's setup, call and teardown times, written at the end."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid.split("::", 1)[0]] += report.duration

    def pytest_sessionfinish(self) -> None:
        ordered = {k: round(v, 1) for k, v in sorted(self.seconds.items())}
        DURATIONS.write_text(json.dumps(ordered, indent=1) + "\n", encoding="utf-8")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--store-durations") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(DurationRecorder(), "mlci-durations")
