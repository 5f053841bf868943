"""`mlci gates init` on a DVC project nobody prepared: a valid, commented gate file from today's metrics.

Then `mlci gates` passes on the untouched project, still passes after a change within the
tolerance, and fails after a change that worsens a metric beyond it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlci.engine.config.gate_file import load_gate_spec
from mlci.engine.config.gate_file_writer import CurrentMetric, ModelFile, render_gate_file

from tests.unprepared_projects import build_unprepared_project, copy_project, dvc_repro, mlci, porcelain, set_quality


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_unprepared_project(tmp_path_factory.mktemp("unprepared") / "project")


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    return copy_project(template, tmp_path / "project")


def test_gates_init_writes_a_gate_file_that_loads_and_passes_on_the_untouched_project(project: Path) -> None:
    before = porcelain(project)
    done = mlci(project, "gates", "init")
    assert done.returncode == 0, done.stderr
    assert "wrote model_gates.yaml" in done.stdout
    # The one change: the new gate file.
    assert porcelain(project) == before + "?? model_gates.yaml\n"
    text = (project / "model_gates.yaml").read_text()
    assert "# today 0.8859 (dvclive/metrics.json) minus 0.02" in text
    spec = load_gate_spec(project / "model_gates.yaml")
    bounds = {t.metric: (t.min, t.max) for t in spec.performance}
    assert bounds == {"accuracy": (0.8659, None), "loss": (None, 0.1341)}  # DVCLive's `step` is no metric
    assert spec.regression is not None and spec.regression.max_degradation == 0.02
    assert spec.size is not None and spec.size.max_mb > 0.02
    gates = mlci(project, "gates", "-q")
    assert gates.returncode == 0, gates.stdout + gates.stderr
    assert "5 of 5 gates pass" in gates.stdout
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()


def test_the_gates_fail_after_a_change_that_worsens_a_metric_beyond_the_tolerance(project: Path) -> None:
    assert mlci(project, "gates", "init").returncode == 0
    set_quality(project, 0.89)  # accuracy 0.8859 -> 0.8761: worse, within 0.02
    dvc_repro(project)
    within = mlci(project, "gates", "-q")
    assert within.returncode == 0, within.stdout
    set_quality(project, 0.8)  # accuracy 0.7875: 0.098 worse
    dvc_repro(project)
    beyond = mlci(project, "gates", "-q")
    assert beyond.returncode == 1
    assert "FAIL  performance accuracy >= 0.8659" in beyond.stdout
    assert "FAIL  regression  accuracy drop vs baseline" in beyond.stdout
    assert "FAIL  performance loss <= 0.1341" in beyond.stdout


def test_an_existing_gate_file_is_kept_unless_forced(project: Path) -> None:
    (project / "model_gates.yaml").write_text("performance: {accuracy: {min: 0.5}}\n")
    refused = mlci(project, "gates", "init")
    assert refused.returncode == 1
    assert "model_gates.yaml already exists: pass --force to overwrite it" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (project / "model_gates.yaml").read_text() == "performance: {accuracy: {min: 0.5}}\n"
    forced = mlci(project, "gates", "init", "--force", "--tolerance", "0.05")
    assert forced.returncode == 0, forced.stderr
    assert "accuracy: {min: 0.8359}" in (project / "model_gates.yaml").read_text()


def test_a_bad_tolerance_is_refused_with_one_line_and_nothing_written(project: Path) -> None:
    done = mlci(project, "gates", "init", "--tolerance", "3")
    assert done.returncode == 2
    assert "must be between 0 and 1" in done.stderr and "Traceback" not in done.stderr
    assert not (project / "model_gates.yaml").exists()


def test_without_a_gate_file_mlci_gates_names_gates_init(project: Path) -> None:
    done = mlci(project, "gates")
    assert done.returncode == 1
    assert "`mlci gates init` writes one" in done.stderr


def test_the_rendered_file_bounds_each_metric_on_its_scale(tmp_path: Path) -> None:
    metrics = [
        CurrentMetric("step", 9.0, "m.json"),
        CurrentMetric("accuracy", 0.01, "m.json"),
        CurrentMetric("mse", 300.0, "m.json"),
        CurrentMetric("eval.f1", 0.8, "eval/m.json"),
        CurrentMetric("accuracy", 0.5, "other.json"),  # the first file's value counts, as in the gates
        CurrentMetric("train_seconds", 12.5, "m.json"),  # timings and counts are no quality
        CurrentMetric("n_rows", 400.0, "m.json"),
        CurrentMetric("rows", 4000.0, "m.json"),  # the sample project's metrics.json has it
        CurrentMetric("fairness.gender.accuracy", 0.7, "m.json"),  # a detail of a file with top-level metrics
        CurrentMetric("accuracy_disparity", 0.03, "m.json"),  # lower is better
    ]
    text = render_gate_file(metrics, ModelFile("models/model", 2_000_000, "an MLflow model", named=False))
    path = tmp_path / "model_gates.yaml"
    path.write_text(text)
    spec = load_gate_spec(path)
    bounds = {t.metric: (t.min, t.max) for t in spec.performance}
    assert bounds == {
        "accuracy": (0.0, None),
        "mse": (None, 306.0),
        "accuracy_disparity": (None, 0.05),
        "eval.f1": (0.78, None),
    }
    assert spec.size is not None and spec.size.max_mb == 3.0
    assert spec.evaluation is None or spec.evaluation.model is None  # an MLflow model is found without naming it


def test_a_scikit_learn_model_saved_with_skops_is_found_as_the_model(tmp_path: Path) -> None:
    # `.skops` is scikit-learn's safe format (and MLflow's default for it): a model like any `.pkl`.
    from mlci.engine.gates.gate_inference import find_model_file

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "notes.txt").write_text("not a model\n")
    (tmp_path / "models" / "classifier.skops").write_bytes(b"\0" * 2048)
    found = find_model_file(tmp_path)
    assert found is not None and found.path == "models/classifier.skops"
