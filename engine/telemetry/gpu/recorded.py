"""Replays recorded GPU samples: for tests, and for showing the GPU panel on a machine without one.

A recording is a JSON-lines file with one `GpuSample` event per line, in the shape
`event_to_json` writes and `mlci gpu --json` prints, so `mlci gpu --json >> gpu.jsonl` once a
second on a real GPU makes one. Pointing `MLCI_GPU_RECORDING` at such a file makes mlci replay
it instead of asking NVML.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path

from mlci.engine.errors import ConfigError
from mlci.engine.events import GpuSample, event_from_json

__all__ = ["RecordedSampler", "load_recording"]


def load_recording(path: Path) -> tuple[GpuSample, ...]:
    """Every sample in a recording; a malformed line is a ConfigError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read the GPU recording: {exc.strerror or exc}") from exc
    samples: list[GpuSample] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            event = event_from_json(data) if isinstance(data, dict) else None
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(path, number, f"not a GpuSample event: {exc}") from exc
        if not isinstance(event, GpuSample):
            raise ConfigError(path, number, 'not a GpuSample event (expected "type": "GpuSample")')
        samples.append(event)
    if not samples:
        raise ConfigError(path, None, "the GPU recording has no samples")
    return tuple(samples)


class RecordedSampler:
    """Hands out recorded samples in order, each stamped with the time it is handed out.

    Args:
        samples: The recording, or a path to a JSON-lines recording.
        loop: Start over after the last sample (a demo that keeps moving); otherwise hold the
            last one (a test that wants a final state).
    """

    def __init__(self, samples: Sequence[GpuSample] | Path | str, *, loop: bool = True) -> None:
        loaded = load_recording(Path(samples)) if isinstance(samples, Path | str) else tuple(samples)
        if not loaded:
            raise ValueError("a RecordedSampler needs at least one sample")
        self._samples = loaded
        self._loop = loop
        self._next = 0

    def sample(self) -> GpuSample:
        """The next recorded sample."""
        recorded = self._samples[self._next]
        if self._next + 1 < len(self._samples):
            self._next += 1
        elif self._loop:
            self._next = 0
        return dataclasses.replace(recorded, at=time.time())

    def close(self) -> None:
        """Nothing to release."""
