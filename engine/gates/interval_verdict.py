"""A gate's verdict once its figure has an interval: pass, fail, or borderline, and the words for it.

One policy for every gate that compares a resampled figure with a threshold:

- without `confidence` in the gate file the point estimate decides, as it always did;
- with it, the gate passes only when the whole interval is on the passing side;
- either way, a point estimate that passes while the interval crosses the threshold is
  borderline: the verdict could flip with another sample of the same size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mlci.engine.events import GateResult
from mlci.engine.gates.intervals import Interval

__all__ = ["Judgement", "bracket", "judge", "with_interval"]


@dataclass(frozen=True)
class Judgement:
    """The verdict of one gate on its point estimate and its interval."""

    passed: bool
    borderline: bool


def judge(*, point_ok: bool, crosses: bool, has_interval: bool, confidence: float | None) -> Judgement:
    """`crosses`: the interval reaches past the threshold; `confidence`: the level the gate file asks to decide on."""
    borderline = point_ok and has_interval and crosses
    if confidence is None:
        return Judgement(point_ok, borderline)
    return Judgement(point_ok and has_interval and not crosses, borderline)


def bracket(low: float, high: float, *, signed: bool = False) -> str:
    """An interval as the reasons write it: "[0.9105, 0.9275]" (differences signed: "[-0.0080, +0.0040]")."""
    spec = "+.4f" if signed else ".4f"
    return f"[{low:{spec}}, {high:{spec}}]"


def with_interval(
    result: GateResult,
    interval: Interval | None,
    note: str,
    *,
    low: float | None = None,
    high: float | None = None,
    borderline: bool = False,
) -> GateResult:
    """`result` carrying its interval (on the scale of its value: `low`/`high` when they differ from the
    interval's own, as a regression's baseline plus the paired difference) and how it was made."""
    if interval is None:
        return replace(result, interval_note=note)
    return replace(
        result,
        interval_low=interval.low if low is None else low,
        interval_high=interval.high if high is None else high,
        confidence=interval.confidence,
        borderline=borderline,
        interval_note=note,
    )
