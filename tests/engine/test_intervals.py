"""The bootstrap behind the gates' intervals: the resampled metrics are scikit-learn's on the resampled rows,
seeded, paired, and honest about what they cannot resample; the verdict policy on top of them."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.errors import ConfigError
from mlci.engine.events import GateReport, GateResult
from mlci.engine.gates.evaluate import evaluate_gates
from mlci.engine.gates.interval_verdict import judge
from mlci.engine.gates.intervals import (
    Bootstrap,
    classification_samples,
    disparity_samples,
    group_samples,
    interval_of,
    mean_samples,
)
from mlci.engine.gates.model_eval import classification_metrics
from sklearn import metrics as skm

from tests.gate_projects import build_gate_project, copy_project, register_champion, set_metric, write_gates

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


def _edge_cases() -> dict[str, tuple[Any, Any, Any, str]]:
    rng = np.random.default_rng(11)
    y, labels, scores = binary_case(rows=300)
    names = np.array(["approved", "denied", "review"])
    return {
        "binary, tied scores": (y, labels, scores, "binary"),
        "string classes, one only predicted": (rng.choice(names[:2], 200), rng.choice(names, 200), None, "macro"),
        "no label 1 anywhere": (np.zeros(50, dtype=int), np.zeros(50, dtype=int), rng.random(50), "binary"),
        "one true class, both predicted": (np.ones(40, dtype=int), rng.integers(0, 2, 40), rng.random(40), "binary"),
        "perfect, scores exactly 0 and 1": (y, y, y.astype(float), "binary"),
    }


@pytest.mark.parametrize("case", list(_edge_cases()))
def test_the_gates_point_figures_are_sklearns_without_importing_it(case: str) -> None:
    y, labels, scores, average = _edge_cases()[case]
    values, missing = classification_metrics(y, labels, scores)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns of the ill-defined cases these are
        expected = sklearn_metrics(y, labels, None, average)
        if scores is not None and average == "binary" and len(set(y.tolist())) == 2:
            expected |= sklearn_metrics(y, labels, scores, average)
    assert values == pytest.approx(expected, abs=1e-12)
    assert set(missing) == {"auc_roc", "log_loss"} - set(expected)


def test_scores_with_nan_leave_auc_and_log_loss_missing_so_their_gates_fail() -> None:
    y, labels, scores = binary_case(rows=100)
    scores = scores.astype(float)
    scores[7] = np.nan
    values, missing = classification_metrics(y, labels, scores)
    assert "auc_roc" not in values and "log_loss" not in values
    assert missing["auc_roc"] == missing["log_loss"] == "the model's scores hold NaN or infinite values"
    assert values["accuracy"] == pytest.approx(skm.accuracy_score(y, labels))


def test_the_gates_metrics_need_neither_sklearn_nor_scipy() -> None:
    probe = (
        "import sys, numpy as np\n"
        "from mlci.engine.gates.model_eval import classification_metrics\n"
        "classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]), np.array([0.1, 0.8, 0.4]))\n"
        "print('sklearn' in sys.modules, 'scipy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


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


# -- the gates on a tiny real project (scikit-learn model, MLflow registry, DVC metrics file) --------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_gate_project(tmp_path_factory.mktemp("intervals") / "proj")


@pytest.fixture
def project(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return copy_project(template, tmp_path / "proj")


def gate(report: GateReport, family: str, start: str = "") -> GateResult:
    found = [r for r in report.results if r.gate == family and r.check.startswith(start)]
    assert len(found) == 1, [r.check for r in report.results]
    return found[0]


def test_a_figure_from_the_metrics_file_borrows_the_splits_interval_only_when_the_model_scores_it(
    project: Path,
) -> None:
    write_gates(project, "performance: {accuracy: {min: 0.5}, f1_score: {min: 0.5, confidence: 0.9}}\n")
    set_metric(project, "f1_score", 0.7)  # not what the model scores on data/test.csv
    report = evaluate_gates(load_config(project))
    accuracy, f1 = gate(report, "performance", "accuracy"), gate(report, "performance", "f1_score")
    assert accuracy.passed and accuracy.interval_low is not None and accuracy.interval_high is not None
    assert accuracy.interval_low < accuracy.value < accuracy.interval_high  # type: ignore[operator]
    assert accuracy.confidence == 0.95 and accuracy.interval_note.startswith("95% bootstrap interval, 1000 resamples")
    # No rows behind 0.7: no interval, and the confidence the gate asks for fails closed.
    assert f1.interval_low is None and not f1.passed
    assert f1.interval_note.startswith("no rows to resample: f1_score 0.7000 is read from metrics.json")
    assert "but confidence 0.9 needs an interval and there is none" in f1.reason


def test_confidence_on_a_performance_gate_decides_on_the_lower_bound(project: Path) -> None:
    computed = evaluate_gates(load_config(project))
    accuracy = gate(computed, "performance", "accuracy")
    assert accuracy.value is not None and accuracy.interval_low is not None
    edge = round((accuracy.value + accuracy.interval_low) / 2, 4)  # the point passes, the interval does not
    write_gates(project, f"performance: {{accuracy: {{min: {edge}}}}}\n")
    borderline = gate(evaluate_gates(load_config(project)), "performance")
    assert borderline.passed and borderline.borderline
    assert borderline.reason.endswith(
        f"borderline: its 95% interval [{borderline.interval_low:.4f}, "
        f"{borderline.interval_high:.4f}] crosses {edge:.4f}"
    )
    write_gates(project, f"performance: {{accuracy: {{min: {edge}, confidence: 0.95}}}}\n")
    decided = gate(evaluate_gates(load_config(project)), "performance")
    assert not decided.passed and decided.borderline and decided.threshold == edge
    assert f"but its 95% interval [{decided.interval_low:.4f}, {decided.interval_high:.4f}] crosses" in decided.reason


def test_the_champion_against_itself_is_a_paired_zero_and_a_recorded_baseline_has_no_pairs(project: Path) -> None:
    write_gates(project, "performance: {accuracy: {min: 0.5}}\nregression: {max_degradation: 0.0, confidence: 0.99}\n")
    register_champion(project)
    same = gate(evaluate_gates(load_config(project)), "regression")
    assert same.passed and same.confidence == 0.99 and same.baseline is not None
    assert (same.interval_low, same.interval_high) == (same.baseline, same.baseline)
    assert "+0.0000, 99% interval [+0.0000, +0.0000] lies above -0.0000" in same.reason


def test_a_baseline_of_recorded_figures_cannot_be_paired_and_confidence_fails_closed(project: Path) -> None:
    write_gates(project, "performance: {accuracy: {min: 0.5}}\nregression: {max_degradation: 0.05, confidence: 0.95}\n")
    result = gate(evaluate_gates(load_config(project)), "regression")  # the baseline: metrics.json on main
    assert not result.passed and result.interval_low is None
    assert result.reason == (
        "accuracy: confidence 0.95 needs candidate and baseline on the same rows, and no rows to resample: "
        "the baseline (metrics.json on main) is recorded figures, not a model"
    )


def test_a_gate_file_with_a_bad_confidence_is_one_line_exit_2(project: Path) -> None:
    write_gates(project, "regression:\n  max_degradation: 0.01\n  confidence: 95\n")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run(
        [sys.executable, "-m", "mlci.engine", "gates", str(project)], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().endswith(
        "model_gates.yaml:3: regression.confidence is out of range: 95 (must be below 1, e.g. 0.95)"
    )
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    write_gates(project, "performance: {accuracy: {min: 0.5, confidence: 1.0}}\n")
    with pytest.raises(ConfigError, match=r"model_gates.yaml:1: performance.accuracy.confidence is out of range: 1.0"):
        load_config(project)


def test_the_printer_names_a_borderline_pass_with_both_numbers() -> None:
    import io

    from mlci.engine.cli.printer import HumanPrinter

    reason = "accuracy 0.9190 >= 0.9150 (metrics.json); borderline: its 95% interval [0.9105, 0.9275] crosses 0.9150"
    report = GateReport(
        (
            GateResult("performance", "accuracy >= 0.9150", True, 0.919, 0.915, reason, borderline=True),
            GateResult("size", "model size <= 50 MB", True, 0.05, 50.0, "0.05 MB <= 50 MB"),
        )
    )
    stream = io.StringIO()
    HumanPrinter(stream, clock=lambda: 0.0, colour=False)(report)  # type: ignore[call-arg]
    assert stream.getvalue().splitlines()[0][9:] == f"✔ gates passed (2 checks), 1 borderline: performance: {reason}"


def test_the_model_tier_logs_figures_and_intervals_beside_the_training_metrics(project: Path) -> None:
    from mlci.engine.run.tier_run import log_gate_figures_to_run
    from mlflow.tracking import MlflowClient

    register_champion(project)
    config = load_config(project)
    client = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    run_id = client.create_run(client.get_experiment_by_name("tiny").experiment_id).info.run_id
    client.log_metric(run_id, "test_accuracy", 0.9)  # what a training run logs
    report = evaluate_gates(config)
    assert log_gate_figures_to_run(config, report, run_id) is None
    logged = client.get_run(run_id).data.metrics
    accuracy = gate(report, "performance", "accuracy")
    assert logged["test_accuracy"] == 0.9
    assert (logged["accuracy"], logged["accuracy_ci_low"], logged["accuracy_ci_high"]) == (
        accuracy.value,
        accuracy.interval_low,
        accuracy.interval_high,
    )
    assert logged["accuracy_vs_baseline"] == logged["accuracy_vs_baseline_ci_low"] == 0.0  # the champion itself
    assert {"accuracy_disparity_g", "accuracy_disparity_g_ci_high", "behavioral_pass_rate_ci_low"} <= set(logged)
    assert "p99_ms" not in logged  # latency has no rows to resample, and is the model tier's own figure elsewhere
    notice = log_gate_figures_to_run(config, report, "0" * 32)
    assert notice is not None and notice.level == "warning" and "could not log the gate figures" in notice.text


def test_mlci_gates_text_gives_each_interval_or_why_there_is_none() -> None:
    from mlci.engine.cli.commands.gates_cmd import format_report

    report = GateReport(
        (
            GateResult(
                "performance",
                "accuracy >= 0.9150",
                True,
                0.919,
                0.915,
                "accuracy 0.9190 >= 0.9150 (metrics.json)",
                metric="accuracy",
                interval_low=0.9105,
                interval_high=0.9275,
                confidence=0.95,
                borderline=True,
            ),
            GateResult(
                "regression",
                "accuracy drop vs baseline <= 0.0100",
                True,
                0.919,
                0.909,
                "within",
                metric="accuracy",
                baseline=0.919,
                interval_low=0.919,
                interval_high=0.919,
                confidence=0.95,
            ),
            GateResult(
                "performance",
                "f1_score >= 0.8400",
                True,
                0.8757,
                0.84,
                "f1_score 0.8757 >= 0.8400 (metrics.json)",
                metric="f1_score",
                interval_note="no rows to resample: f1_score 0.8757 is read from metrics.json",
            ),
        )
    )
    lines = [line.strip() for line in format_report(report)]
    assert lines[2] == "BORDERLINE: 95% interval [0.9105, 0.9275]"
    assert lines[4] == "95% interval [0.9190, 0.9190] (paired: candidate - baseline [+0.0000, +0.0000])"
    assert lines[6] == "no rows to resample: f1_score 0.8757 is read from metrics.json"
    assert lines[-1] == "3 of 3 gates pass; 1 borderline (the value passes, its interval crosses the threshold)"
