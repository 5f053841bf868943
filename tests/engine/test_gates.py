"""The model gates on a tiny real project: values, thresholds, verdicts and reasons a user reads."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.errors import ConfigError
from mlci.engine.events import GateReport, GateResult
from mlci.engine.gates.baseline import find_baseline
from mlci.engine.gates.evaluate import evaluate_gates, run_gates

from tests.dvc_init import dvc_init
from tests.gate_projects import (
    GOOD_GATES,
    build_gate_project,
    copy_project,
    git,
    register_champion,
    set_metric,
    write_gates,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_gate_project(tmp_path_factory.mktemp("gates") / "proj")


@pytest.fixture
def project(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return copy_project(template, tmp_path / "proj")


def gates(root: Path) -> GateReport:
    return evaluate_gates(load_config(root))


def result(report: GateReport, gate: str, check_start: str = "") -> GateResult:
    found = [r for r in report.results if r.gate == gate and r.check.startswith(check_start)]
    assert len(found) == 1, [r.check for r in report.results]
    return found[0]


def mlci(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in __import__("os").environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", *args], cwd=cwd, capture_output=True, text=True, check=False, env=env
    )


def test_the_tiny_model_passes_every_gate_with_values_thresholds_and_reasons(project: Path) -> None:
    report = gates(project)
    assert report.passed, [r.reason for r in report.results if not r.passed]
    assert {r.gate for r in report.results} == {
        "performance",
        "regression",
        "latency",
        "size",
        "fairness",
        "behavioral",
    }
    accuracy = result(report, "performance", "accuracy")
    recorded = json.loads((project / "metrics.json").read_text())["accuracy"]
    assert accuracy.value == recorded and accuracy.threshold == 0.7
    assert accuracy.reason == f"accuracy {recorded:.4f} >= 0.7000 (metrics.json)"
    assert report.model_uri == "models/model"
    # No registry yet: the baseline is the metrics committed on main.
    assert report.baseline == "metrics.json on main"
    p99 = result(report, "latency", "p99")
    assert p99.value is not None and p99.value > 0
    # Far within its limits: the timing ends once even the slowest of 300 calls is within every one.
    assert "(300 single-row calls after 100 warm-up, the slowest within every limit)" in p99.reason
    size = result(report, "size")
    assert size.value is not None and 0 < size.value < 5
    assert result(report, "behavioral").reason.startswith("4 of 4 cases pass")
    fairness = result(report, "fairness")
    assert fairness.check == "g: accuracy disparity <= 0.3000"
    assert any(line.startswith("g=a: accuracy") for line in fairness.details)


def test_a_threshold_above_the_measured_value_fails_with_both_numbers_and_exit_1(project: Path) -> None:
    write_gates(project, GOOD_GATES.replace("accuracy: {min: 0.7}", "accuracy: {min: 0.99}"))
    measured = json.loads((project / "metrics.json").read_text())["accuracy"]
    proc = mlci("gates", "--json", str(project), cwd=project)
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert data["passed"] is False
    failing = [r for r in data["results"] if not r["passed"]]
    assert [r["check"] for r in failing] == ["accuracy >= 0.9900"]
    assert failing[0]["value"] == measured and failing[0]["threshold"] == 0.99
    assert failing[0]["reason"] == f"accuracy {measured:.4f} < 0.9900 (metrics.json)"
    text = mlci("gates", "--quiet", str(project), cwd=project)
    assert text.returncode == 1
    first = text.stdout.splitlines()[1]
    assert first.startswith("FAIL  performance") and f"{measured:.4f} < 0.9900" in first


def test_a_metric_that_does_not_exist_fails_as_missing(project: Path) -> None:
    write_gates(project, "performance: {foo: {min: 0.5}, accuracy: {min: 0.5}}\n")
    report = gates(project)
    foo = result(report, "performance", "foo")
    assert not foo.passed and foo.value is None
    assert foo.reason == "missing: no metric 'foo' in metrics.json or computed from the model"
    assert result(report, "performance", "accuracy").passed
    assert not report.passed


def test_a_nan_metric_fails_closed(project: Path) -> None:
    (project / "metrics.json").write_text('{"accuracy": NaN, "f1_score": 0.9, "auc_roc": 0.9}\n')
    report = gates(project)
    accuracy = result(report, "performance", "accuracy")
    assert not accuracy.passed and accuracy.value is None
    assert "NaN" in accuracy.reason and "metrics.json" in accuracy.reason


def test_metric_names_map_across_spellings(project: Path) -> None:
    (project / "metrics.json").write_text('{"acc": 0.81, "f1": 0.8, "roc_auc": 0.9}\n')
    report = gates(project)
    assert result(report, "performance", "accuracy").value == 0.81
    assert result(report, "performance", "f1_score").value == 0.8
    auc = result(report, "performance", "auc_roc")
    assert auc.value == 0.9 and "metrics.json:roc_auc" in auc.reason


def test_without_a_metrics_file_the_metrics_are_computed_from_the_model(project: Path) -> None:
    recorded = json.loads((project / "metrics.json").read_text())
    (project / "metrics.json").unlink()
    write_gates(project, "performance: {accuracy: {min: 0.7}, auc_roc: {min: 0.7}, balanced_accuracy: {min: 0.5}}\n")
    report = gates(project)
    assert report.passed, [r.reason for r in report.results]
    accuracy = result(report, "performance", "accuracy")
    assert accuracy.value is not None and math.isclose(accuracy.value, recorded["accuracy"], abs_tol=1e-6)
    assert accuracy.reason.endswith("(computed on data/test.csv)")
    auc = result(report, "performance", "auc_roc")
    assert auc.value is not None and math.isclose(auc.value, recorded["auc_roc"], abs_tol=1e-6)


def test_an_unreadable_model_fails_the_gates_that_need_it(project: Path) -> None:
    (project / "models" / "model" / "MLmodel").write_text("flavors: {python_function: {loader_module: nope}}\n")
    report = gates(project)
    assert result(report, "performance", "accuracy").passed  # from metrics.json, the model is not needed
    for gate in ("latency", "behavioral"):
        for r in (r for r in report.results if r.gate == gate):
            assert not r.passed and "unreadable model" in r.reason, r.reason
    assert "unreadable model" in result(report, "fairness").reason
    assert not report.passed


def test_an_empty_test_split_fails_with_the_reason(project: Path) -> None:
    (project / "data" / "test.csv").write_text("x1,x2,g,y\n")
    report = gates(project)
    fairness = result(report, "fairness")
    assert not fairness.passed and fairness.reason == "the test split data/test.csv is empty"
    assert all(not r.passed for r in report.results if r.gate == "latency")


def test_no_baseline_fails_the_regression_gate_visibly(project: Path) -> None:
    git(project, "branch", "-m", "main", "work")  # no main branch, no registry
    report = gates(project)
    regression = result(report, "regression")
    assert not regression.passed
    assert regression.reason.startswith("no baseline: no champion: MLflow store unreachable")
    assert "no branch 'main'" in regression.reason


def test_worse_than_main_by_more_than_allowed_fails_naming_the_metric_and_both_values(project: Path) -> None:
    base = json.loads((project / "metrics.json").read_text())["accuracy"]
    set_metric(project, "accuracy", round(base - 0.05, 6))
    report = gates(project)
    accuracy = result(report, "regression", "accuracy")
    assert not accuracy.passed
    assert accuracy.reason == (
        f"accuracy {base - 0.05:.4f} is 0.0500 worse than {base:.4f} (metrics.json on main), "
        f"more than the 0.0200 allowed"
    )
    assert result(report, "regression", "f1_score").passed
    assert (accuracy.metric, accuracy.value, accuracy.baseline) == ("accuracy", round(base - 0.05, 6), base)


def test_the_champion_is_the_baseline_when_the_registry_has_one(project: Path) -> None:
    register_champion(project, metrics={"test_accuracy": 0.99, "test_f1_score": 0.5, "test_roc_auc": 0.5})
    report = gates(project)
    assert report.baseline == "champion v1 of tiny"
    accuracy = result(report, "regression", "accuracy")
    assert not accuracy.passed and "worse than 0.9900 (champion v1 of tiny)" in accuracy.reason
    assert result(report, "regression", "auc_roc").passed


def test_the_champion_read_straight_from_sqlite_is_the_one_mlflows_client_reads(project: Path) -> None:
    """The gates child reads the champion's version, run, metrics and params from a sqlite store's tables,
    without MLflow's SQLAlchemy store: the same baseline, figure for figure, as MLflow's client gives."""
    from mlci.engine.gates.baseline import _champion
    from mlflow.tracking import MlflowClient

    register_champion(project, metrics={"test_accuracy": 0.91, "test_f1_score": float("nan")})
    uri = f"sqlite:///{(project / 'mlflow.db').as_posix()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run_id = client.get_model_version_by_alias("tiny", "champion").run_id
    client.log_metric(run_id, "test_accuracy", 0.93, step=1)  # the latest value is the run's figure
    client.log_param(run_id, "lr", "0.01")
    config = load_config(project)
    read = find_baseline(config)
    assert read.label == "champion v1 of tiny" and read.model == ("tiny", "1") and read.run_id == run_id
    assert read.metrics["test_accuracy"] == 0.93 and math.isnan(read.metrics["test_f1_score"])
    assert read.params == {"lr": "0.01"}
    through_mlflow, why = _champion(config, read_sqlite=False)
    assert why == "" and through_mlflow is not None
    assert repr(read) == repr(through_mlflow)  # repr: NaN == NaN


_CHAMPION_IN_A_FRESH_INTERPRETER = """
import sys
from pathlib import Path
from mlci.engine.config.loader import load_config
from mlci.engine.gates.baseline import find_baseline
from mlci.engine.gates.registry import download_version

config = load_config(sys.argv[1])
assert find_baseline(config).label == "champion v" + sys.argv[2] + " of tiny"
files = download_version(config, "tiny", sys.argv[2], Path(sys.argv[3]))
print("MLmodel" if (files / "MLmodel").is_file() else "no MLmodel", "sqlalchemy" in sys.modules)
"""


def test_the_champions_files_come_from_a_sqlite_store_as_mlflows_client_downloads_them(
    project: Path, tmp_path: Path
) -> None:
    """The champion's model is copied from where a sqlite store keeps it (`runs:/` resolved through its run),
    without MLflow's SQLAlchemy store: the same files, in the same place under the target, as MLflow's download."""
    import mlflow.artifacts
    from mlci.engine.gates.registry import _client, download_version

    version = register_champion(project, metrics={"test_accuracy": 0.91})
    config = load_config(project)
    copied = download_version(config, "tiny", version, tmp_path / "ours")
    uri = _client(config).get_model_version_download_uri("tiny", version)
    assert uri.startswith("runs:/") or uri.startswith("file:")
    downloaded = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(tmp_path / "theirs"), tracking_uri=config.mlflow.tracking_uri
        )
    )

    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    assert copied.relative_to(tmp_path / "ours") == downloaded.relative_to(tmp_path / "theirs")
    assert files(copied) == files(downloaded) and "MLmodel" in files(copied)
    # What the gates child does to evaluate the champion, in a fresh interpreter: MLflow's store stays closed.
    child = subprocess.run(
        [sys.executable, "-c", _CHAMPION_IN_A_FRESH_INTERPRETER, str(project), version, str(tmp_path / "child")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.split() == ["MLmodel", "False"]


def test_a_check_proven_green_against_one_champion_is_not_proven_against_the_next(project: Path) -> None:
    """The pre-push check answers from its history only for the same content key: moving `champion`
    (a promotion) changes the key, so the next check runs the gates against the new champion."""
    from mlci.engine.loop.proof import content_key
    from mlflow.tracking import MlflowClient

    config = load_config(project)
    head = git(project, "rev-parse", "HEAD")
    without = dict(content_key(config, head, full=False).parts)
    assert without["baseline"] == f"no MLflow store; main at {head}"  # main's committed metrics, then

    register_champion(project)
    first = content_key(config, head, full=False)
    assert dict(first.parts)["baseline"] == "champion v1 of tiny"
    assert first.digest == content_key(config, head, full=False).digest  # nothing moved: the same key

    uri = f"sqlite:///{(project / 'mlflow.db').as_posix()}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    v1 = client.get_model_version("tiny", "1")
    v2 = client.create_model_version("tiny", source=v1.source, run_id=v1.run_id)
    client.set_registered_model_alias("tiny", "champion", v2.version)
    promoted = content_key(config, head, full=False)
    assert dict(promoted.parts)["baseline"] == "champion v2 of tiny"
    assert promoted.digest != first.digest
    assert find_baseline(config).label == "champion v2 of tiny"  # the same champion the gates then compare with


def test_a_champion_run_without_metrics_is_evaluated_on_the_test_split(project: Path) -> None:
    register_champion(project, metrics={})
    report = gates(project)
    accuracy = result(report, "regression", "accuracy")
    assert accuracy.passed, accuracy.reason
    assert "baseline: " in accuracy.details[1] and "computed on data/test.csv" in accuracy.details[1]


def test_a_model_logged_with_other_packages_says_so_in_the_progress_and_still_gets_its_verdict(
    project: Path,
) -> None:
    model = project / "models" / "model"
    (model / "requirements.txt").write_text(
        "scikit-learn\nnumpy==0.0.1  # pinned by the training machine\nmlci-no-such-package==1.0\n"
        "--index-url https://example.invalid/simple\n"
    )
    env = (model / "python_env.yaml").read_text()
    (model / "python_env.yaml").write_text(re.sub(r"(?m)^python: .*$", "python: 2.7.18", env))
    lines: list[str] = []
    report = evaluate_gates(load_config(project), emit_progress=lines.append)
    import numpy

    differences = [line for line in lines if line.startswith("the model's environment differs: ")]
    assert [line.split(": ", 1)[1] for line in differences] == [
        f"Python {sys.version_info[0]}.{sys.version_info[1]} runs here (the model was logged on 2.7)",
        f"numpy {numpy.__version__} is installed (the model needs numpy==0.0.1)",
        "mlci-no-such-package is not installed (the model needs mlci-no-such-package==1.0)",
    ]
    assert report.passed  # a difference is told, not judged: the figures are this environment's


def test_failing_behavioral_cases_are_listed(project: Path) -> None:
    cases = (project / "tests" / "cases.csv").read_text() + "3.0,3.0,0\n"
    (project / "tests" / "cases.csv").write_text(cases)
    behavioral = result(gates(project), "behavioral")
    assert not behavioral.passed and behavioral.value == 0.8
    assert behavioral.reason == "4 of 5 cases pass: rate 0.80 < 1.00; failing: rows 5"
    assert behavioral.details == ("row 5: x1=3.0, x2=3.0 -> expected 0, got 1",)


def test_the_fairness_metric_is_configurable_and_groups_are_shown(project: Path) -> None:
    write_gates(project, "fairness: {max_disparity: 0.0, protected_attributes: [g, nope], metric: selection_rate}\n")
    report = gates(project)
    g = result(report, "fairness", "g:")
    assert g.check == "g: selection_rate disparity <= 0.0000"
    assert not g.passed and g.value is not None and g.value > 0
    assert "selection_rate by g ranges" in g.reason
    assert len(g.details) == 2
    missing = result(report, "fairness", "nope:")
    assert missing.reason == "missing: no column 'nope' in data/test.csv"


def test_an_unknown_fairness_metric_is_a_config_error_with_its_line(project: Path) -> None:
    write_gates(
        project, "size: {max_mb: 5}\nfairness: {max_disparity: 0.1, protected_attributes: [g], metric: vibes}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(project)
    assert info.value.line == 2 and "fairness.metric 'vibes'" in str(info.value)
    proc = mlci("gates", str(project), cwd=project)
    assert proc.returncode == 2 and "model_gates.yaml:2" in proc.stderr


def test_the_evaluation_key_names_model_split_and_label(project: Path) -> None:
    (project / "data" / "test.csv").rename(project / "holdout.csv")
    write_gates(
        project,
        "evaluation: {test_data: holdout.csv, label: y}\n"
        "performance: {precision: {min: 0.5}}\nfairness: {max_disparity: 0.3, "
        "protected_attributes: [g]}\n",
    )
    (project / "metrics.json").unlink()
    report = gates(project)
    assert report.passed, [r.reason for r in report.results]
    assert result(report, "performance").reason.endswith("(computed on holdout.csv)")


def test_a_latency_limit_within_reach_is_judged_on_all_1000_calls(project: Path) -> None:
    """A limit the slowest of the first 300 calls exceeds is no clear pass: every call is timed, and the p99
    judged, as without the early stop."""
    write_gates(project, "latency: {p50_ms: 500, p99_ms: 0.000001}\n")
    report = gates(project)
    p99, p50 = result(report, "latency", "p99"), result(report, "latency", "p50")
    assert not p99.passed and p99.reason.endswith("> 1e-06 ms (1000 single-row calls after 100 warm-up)")
    assert p50.passed and "(1000 single-row calls after 100 warm-up)" in p50.reason


def test_a_smaller_size_limit_fails_the_size_gate(project: Path) -> None:
    write_gates(project, "size: {max_mb: 0.000001}\n")
    size = result(gates(project), "size")
    assert not size.passed and size.reason.startswith("models/model is ") and size.reason.endswith("> 1e-06 MB")


def test_the_run_exposes_the_confusion_matrix_and_looked_up_metrics(project: Path) -> None:
    run = run_gates(load_config(project), with_confusion=True)
    assert run.confusion is not None and run.confusion.labels == ("0", "1")
    assert sum(sum(row) for row in run.confusion.matrix) == 300
    assert set(run.candidate) == {"accuracy", "f1_score", "auc_roc"}


def test_a_dvc_project_without_mlflow_gates_its_metrics_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = tmp_path / "plain"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    dvc_init(root)
    (root / "dvc.yaml").write_text(
        "stages:\n  evaluate:\n    cmd: echo\n    metrics:\n      - eval/scores.json:\n          cache: false\n"
    )
    (root / "eval").mkdir()
    (root / "eval" / "scores.json").write_text('{"test": {"roc_auc": 0.93}, "accuracy_score": 0.88}\n')
    (root / "model_gates.yaml").write_text("performance: {accuracy: {min: 0.85}, auc_roc: {min: 0.9}}\n")
    proc = mlci("gates", "--json", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(proc.stdout)
    assert [(r["check"], r["value"], r["passed"]) for r in data["results"]] == [
        ("accuracy >= 0.8500", 0.88, True),
        ("auc_roc >= 0.9000", 0.93, True),
    ]
    assert data["results"][1]["reason"] == "auc_roc 0.9300 >= 0.9000 (eval/scores.json:test.roc_auc)"
    (root / "model_gates.yaml").write_text("performance: {accuracy: {min: 0.9}}\n")
    failed = mlci("gates", cwd=root)
    assert failed.returncode == 1 and "accuracy 0.8800 < 0.9000 (eval/scores.json:accuracy_score)" in failed.stdout


def test_the_gates_in_a_child_process_give_the_same_report(project: Path) -> None:
    from mlci.engine.run.gates_child import evaluate_gates_in_subprocess

    lines: list[str] = []
    child = evaluate_gates_in_subprocess(load_config(project), emit_progress=lines.append)
    here = gates(project)
    assert [(r.check, r.passed) for r in child.results] == [(r.check, r.passed) for r in here.results]
    same = [(r.value, r.reason, r.details) for r in child.results if r.gate != "latency"]
    assert same == [(r.value, r.reason, r.details) for r in here.results if r.gate != "latency"]
    assert "loading the model models/model" in lines


def test_a_malformed_gate_file_in_a_child_process_is_an_error(project: Path) -> None:
    from mlci.engine.errors import MlciError
    from mlci.engine.run.gates_child import evaluate_gates_in_subprocess

    config = load_config(project)
    write_gates(project, "size: {max_mb: -1}\n")
    with pytest.raises(MlciError, match=r"gate evaluation failed: .*size.max_mb is out of range"):
        evaluate_gates_in_subprocess(config)
