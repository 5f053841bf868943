"""The bootstrap behind the gates' intervals: the resampled metrics are scikit-learn's on the resampled rows,
seeded, paired, and honest about what they cannot resample; the verdict policy on top of them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from mlci.engine.gates.interval_verdict import judge
from mlci.engine.gates.intervals import (
    Bootstrap,
    classification_samples,
    disparity_samples,
    group_samples,
    interval_of,
    mean_samples,
)
from sklearn import metrics as skm

ROWS = 1500


def binary_case(seed: int = 3, rows: int = ROWS) -> tuple[Any, Any, Any]:
    """Labels, scores with many ties (rounded to 2 decimals, as a coarse model gives) and labels at 0.5."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.35).astype(int)
    scores = np.round(np.clip(0.35 * y + 0.65 * rng.random(rows), 0.0, 1.0), 2)
    return y, (scores >= 0.5).astype(int), scores


def resampled_rows(boot: Bootstrap, b: int) -> Any:
    """The row indices resample `b` drew, rebuilt from its counts."""
    return np.repeat(np.arange(boot.rows), boot.counts[b].astype(int))


def sklearn_metrics(y: Any, labels: Any, scores: Any | None, average: str) -> dict[str, float]:
    out = {
        "accuracy": skm.accuracy_score(y, labels),
        "balanced_accuracy": skm.balanced_accuracy_score(y, labels),
        "f1_score": skm.f1_score(y, labels, average=average, zero_division=0),
        "precision": skm.precision_score(y, labels, average=average, zero_division=0),
        "recall": skm.recall_score(y, labels, average=average, zero_division=0),
    }
    if scores is not None:
        out["auc_roc"] = skm.roc_auc_score(y, scores)
        out["log_loss"] = skm.log_loss(y, scores, labels=[0, 1])
    return out


def test_each_resampled_metric_is_sklearns_metric_on_the_rows_that_resample_drew() -> None:
    y, labels, scores = binary_case()
    boot = Bootstrap(ROWS, resamples=40)
    samples = classification_samples(boot.counts, y, labels, scores)
    for b in (0, 17, 39):
        rows = resampled_rows(boot, b)
        expected = sklearn_metrics(y[rows], labels[rows], scores[rows], "binary")
        for name, value in expected.items():
            assert samples[name][b] == pytest.approx(value, abs=1e-12), (name, b)


def test_multiclass_labels_resample_the_macro_averages() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, size=600)
    labels = np.where(rng.random(600) < 0.7, y, rng.integers(0, 3, size=600))
    boot = Bootstrap(600, resamples=10)
    samples = classification_samples(boot.counts, y, labels, None)
    assert "auc_roc" not in samples and "log_loss" not in samples  # binary only, as model_eval computes them
    for b in (0, 9):
        rows = resampled_rows(boot, b)
        for name, value in sklearn_metrics(y[rows], labels[rows], None, "macro").items():
            assert samples[name][b] == pytest.approx(value, abs=1e-12), (name, b)


def test_all_weights_one_give_the_point_estimate() -> None:
    y, labels, scores = binary_case()
    samples = classification_samples(np.ones((1, ROWS)), y, labels, scores)
    for name, value in sklearn_metrics(y, labels, scores, "binary").items():
        assert samples[name][0] == pytest.approx(value, abs=1e-12), name


def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    y, labels, scores = binary_case()

    def accuracy_interval(seed: int) -> tuple[float, float]:
        boot = Bootstrap(ROWS, seed=seed)
        found = interval_of(classification_samples(boot.counts, y, labels, scores)["accuracy"], 0.95, rows=ROWS)
        assert found is not None
        return found.low, found.high

    assert accuracy_interval(13) == accuracy_interval(13)
    assert accuracy_interval(13) != accuracy_interval(14)


def test_the_interval_has_the_width_the_binomial_standard_error_predicts() -> None:
    """accuracy p on n rows: the 95% interval spans about 2 x 1.96 x sqrt(p(1-p)/n)."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, size=4000)
    labels = np.where(rng.random(4000) < 0.92, y, 1 - y)
    p = float(np.mean(labels == y))
    boot = Bootstrap(4000)
    found = interval_of(classification_samples(boot.counts, y, labels, None)["accuracy"], 0.95, rows=4000)
    assert found is not None and found.low < p < found.high
    expected = 2 * 1.96 * np.sqrt(p * (1 - p) / 4000)
    assert 0.85 * expected < found.high - found.low < 1.15 * expected
    narrower = interval_of(classification_samples(boot.counts, y, labels, None)["accuracy"], 0.5, rows=4000)
    assert narrower is not None and found.low < narrower.low < narrower.high < found.high


def test_identical_models_differ_by_exactly_zero_in_every_resample() -> None:
    y, labels, scores = binary_case()
    boot = Bootstrap(ROWS)
    first = classification_samples(boot.counts, y, labels, scores)
    again = classification_samples(boot.counts, y, labels.copy(), scores.copy())
    for name in first:
        found = interval_of(first[name] - again[name], 0.95, rows=ROWS)
        assert found is not None and (found.low, found.high) == (0.0, 0.0), name


def test_a_paired_difference_is_narrower_than_the_two_intervals_apart() -> None:
    """Two models that agree on most rows: pairing cancels the rows' own luck."""
    y, labels, _scores = binary_case()
    rng = np.random.default_rng(2)
    flipped = labels.copy()
    change = rng.choice(ROWS, size=30, replace=False)
    flipped[change] = 1 - flipped[change]
    boot = Bootstrap(ROWS)
    a = classification_samples(boot.counts, y, labels, None)["accuracy"]
    b = classification_samples(boot.counts, y, flipped, None)["accuracy"]
    paired = interval_of(a - b, 0.95, rows=ROWS)
    alone = interval_of(a, 0.95, rows=ROWS)
    assert paired is not None and alone is not None
    assert paired.high - paired.low < 0.5 * (alone.high - alone.low)


def test_a_pass_rate_resamples_its_cases() -> None:
    boot = Bootstrap(16)
    passed = [True] * 15 + [False]
    found = interval_of(mean_samples(boot.counts, passed), 0.95, rows=16)
    assert found is not None and found.low < 15 / 16 <= found.high == 1.0
    all_pass = interval_of(mean_samples(boot.counts, [True] * 16), 0.95, rows=16)
    assert all_pass is not None and (all_pass.low, all_pass.high) == (1.0, 1.0)


def test_groups_are_resampled_together_and_their_disparity_has_an_interval() -> None:
    y, labels, scores = binary_case()
    groups = np.where(np.arange(ROWS) % 3 == 0, "b", "a")
    boot = Bootstrap(ROWS, resamples=200)
    per_group = group_samples(boot, groups, "accuracy", y, labels, scores)
    assert list(per_group) == ["a", "b"]
    rows = resampled_rows(boot, 7)
    in_b = groups[rows] == "b"
    group_b = per_group["b"]
    assert group_b is not None
    assert group_b[7] == pytest.approx(skm.accuracy_score(y[rows][in_b], labels[rows][in_b]))
    for metric, sk in (("auc_roc", skm.roc_auc_score), ("recall", skm.recall_score)):
        by_group = group_samples(boot, groups, metric, y, labels, scores)["b"]
        assert by_group is not None
        truth, got = y[rows][in_b], (scores if metric == "auc_roc" else labels)[rows][in_b]
        assert by_group[7] == pytest.approx(sk(truth, got), abs=1e-12), metric
    spread = disparity_samples(per_group)
    assert spread is not None and np.all(spread >= 0)
    assert interval_of(spread, 0.95, rows=ROWS) is not None


def test_a_metric_undefined_in_too_many_resamples_has_no_interval() -> None:
    """One positive in 400 rows: a third of the resamples draw none, and AUC is undefined there."""
    y = np.zeros(400, dtype=int)
    y[:1] = 1
    scores = np.linspace(0, 1, 400)
    boot = Bootstrap(400, resamples=300)
    samples = classification_samples(boot.counts, y, (scores > 0.5).astype(int), scores)
    assert np.isnan(samples["auc_roc"]).mean() > 0.2
    assert interval_of(samples["auc_roc"], 0.95, rows=400) is None


def verdict(**kwargs: Any) -> tuple[bool, bool]:
    found = judge(**kwargs)
    return found.passed, found.borderline


def test_the_verdict_policy() -> None:
    # Without confidence the point estimate decides; a crossing interval only marks it borderline.
    assert verdict(point_ok=True, crosses=True, has_interval=True, confidence=None) == (True, True)
    assert verdict(point_ok=False, crosses=True, has_interval=True, confidence=None) == (False, False)
    assert verdict(point_ok=True, crosses=False, has_interval=False, confidence=None) == (True, False)
    # With confidence the whole interval must pass, and no interval fails closed.
    assert verdict(point_ok=True, crosses=True, has_interval=True, confidence=0.95) == (False, True)
    assert verdict(point_ok=True, crosses=False, has_interval=True, confidence=0.95) == (True, False)
    assert verdict(point_ok=True, crosses=False, has_interval=False, confidence=0.95) == (False, False)
