"""Drift statistics against a reference: population stability index and mean shift."""

from __future__ import annotations

import numpy as np

EPS = 1e-4


def bin_edges(values: np.ndarray, n_bins: int = 10) -> list[float]:
    """Inner bin edges at the reference's quantiles (deduplicated: integer columns tie)."""
    qs = np.quantile(np.asarray(values, dtype=np.float64), np.linspace(0, 1, n_bins + 1)[1:-1])
    return [float(v) for v in np.unique(qs)]


def bin_proportions(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Share of values per bin; bin i holds edges[i-1] < v <= edges[i] (len(edges) + 1 bins)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), v, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.float64)
    return counts / max(1.0, counts.sum())


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two bin-share vectors (0: same; > 0.25: a big shift)."""
    e = np.clip(np.asarray(expected, dtype=np.float64), EPS, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def mean_shift(values: np.ndarray, ref_mean: float, ref_std: float) -> float:
    """|mean - reference mean| in reference standard deviations."""
    v = np.asarray(values, dtype=np.float64)
    return float(abs(np.nanmean(v) - ref_mean) / (ref_std if ref_std > 0 else 1.0))
