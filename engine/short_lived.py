"""Garbage collection in mlci's short-lived commands: what loading a model brings in is frozen.

`mlci gates`, `mlci report` and the model tier's gates child load a model, and with it MLflow,
the model's framework (torch) and pandas: most of the process's heap. Every full garbage
collection walks all of it: during those imports, during the evaluation (the bootstrap's
resamples make many objects) and during the latency timing, where a collection is a pause in
the figure. In a process that ends after its command, the collector is paused while a model
loads, and what the load brought in is frozen (`gc.freeze`) so that later collections skip it:
`mlci gates` on the sample project takes 2.52 s against 2.97 s (`bench/bench_gates.py`), on
0.88x the CPU. The load's own cyclic garbage is frozen with it rather than collected first (a
full collection over that heap is what the pause saves): memory the process gives back when it
ends.

Only once `declare()` was called: a long-lived process (the dashboard, `mlci watch`) keeps
what it loads collectable, since a frozen object is never freed as part of a cycle.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["declare", "loading"]

_declared = False


def declare() -> None:
    """This process ends after its command: what it loads may be frozen."""
    global _declared
    _declared = True


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """Around a heavy load: in a short-lived process, the collector paused during it and what it loaded frozen."""
    if not _declared:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
