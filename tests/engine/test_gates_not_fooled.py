"""Gates that cannot be fooled: fairness needs groups to compare, the positive class is the project's,
the size gate weighs what links point to, and `--model X` judges X on every figure.

Each test builds the situation a user could be in (a real MLflow model, a real test split)
and checks the verdict and the reason the user reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.errors import ConfigError
from mlci.engine.events import GateReport, GateResult
from mlci.engine.gates.evaluate import evaluate_gates

from tests.gate_projects import PIP_REQUIREMENTS, build_gate_project, copy_project, write_gates


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_gate_project(tmp_path_factory.mktemp("gates") / "proj")


@pytest.fixture
def project(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return copy_project(template, tmp_path / "proj")


def gates(root: Path) -> GateReport:
    return evaluate_gates(load_config(root))


def only(report: GateReport, gate: str, check_start: str = "") -> GateResult:
    found = [r for r in report.results if r.gate == gate and r.check.startswith(check_start)]
    assert len(found) == 1, [r.check for r in report.results]
    return found[0]


def rewrite_split(root: Path, change: Any) -> None:
    import pandas as pd

    frame = pd.read_csv(root / "data" / "test.csv")
    change(frame)
    frame.to_csv(root / "data" / "test.csv", index=False)


# -- fairness: groups to compare ----------------------------------------------------------------


def test_fairness_with_a_single_group_fails_and_says_why(project: Path) -> None:
    rewrite_split(project, lambda f: f.__setitem__("g", "a"))
    write_gates(project, "fairness: {max_disparity: 0.05, protected_attributes: [g]}\n")
    fairness = only(gates(project), "fairness")
    assert not fairness.passed and fairness.value is None
    assert fairness.reason == (
        "g has 1 group(s) in data/test.csv (only 'a', 300 rows): a disparity needs at least two groups, fails closed"
    )


def test_a_group_below_min_group_size_fails_and_names_it(project: Path) -> None:
    rewrite_split(project, lambda f: f.__setitem__("g", ["b" if i < 12 else "a" for i in range(len(f))]))
    write_gates(project, "fairness: {max_disparity: 1.0, protected_attributes: [g]}\n")
    fairness = only(gates(project), "fairness")
    assert not fairness.passed
    assert fairness.reason == (
        "g group(s) 'b' (12 rows) in data/test.csv have fewer rows than min_group_size 30: too few to judge, "
        "fails closed"
    )
    assert any(line.startswith("g=b: accuracy") and "(12 rows)" in line for line in fairness.details)
    # The project says how small a group may be: then the 12 rows are judged.
    write_gates(project, "fairness: {max_disparity: 1.0, protected_attributes: [g], min_group_size: 10}\n")
    judged = only(gates(project), "fairness")
    assert judged.passed and judged.value is not None, judged.reason


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "fairness.min_group_size is out of range: 0 (must be at least 1)"),
        ("2.5", "fairness.min_group_size must be a whole number of rows, got a number (2.5)"),
        ("true", "fairness.min_group_size must be a whole number of rows, got a boolean"),
    ],
)
def test_min_group_size_is_validated_with_its_line(project: Path, value: str, message: str) -> None:
    write_gates(
        project,
        "size: {max_mb: 5}\nfairness:\n  max_disparity: 0.1\n  protected_attributes: [g]\n"
        f"  min_group_size: {value}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(project)
    assert info.value.line == 5 and message in str(info.value), str(info.value)


# -- the positive class ------------------------------------------------------------------------


def _string_label_project(root: Path) -> Path:
    """A model trained on "approved"/"denied", approving group b far more often than group a."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    def data(seed: int, rows: int) -> Any:
        rng = np.random.default_rng(seed)
        g = rng.choice(["a", "b"], size=rows)
        x1 = rng.normal(size=rows) + np.where(g == "b", 1.5, -1.5)
        y = np.where(x1 + rng.normal(scale=0.5, size=rows) > 0, "approved", "denied")
        return pd.DataFrame({"x1": x1, "g": g, "y": y})

    train, test = data(0, 600), data(1, 400)
    (root / "data").mkdir(parents=True)
    test.to_csv(root / "data" / "test.csv", index=False)
    model = LogisticRegression().fit(train[["x1"]], train["y"])
    assert list(model.classes_) == ["approved", "denied"]
    mlflow.sklearn.save_model(
        model,
        str(root / "models" / "model"),
        signature=infer_signature(train[["x1"]], model.predict(train[["x1"]])),
        pip_requirements=PIP_REQUIREMENTS,
    )
    return root


@pytest.fixture(scope="module")
def strings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _string_label_project(tmp_path_factory.mktemp("strings") / "proj")


def _selection_rates(report: GateReport) -> dict[str, float]:
    fairness = only(report, "fairness")
    rates = {}
    for line in fairness.details:
        group, rest = line.split(": selection_rate ")
        rates[group] = float(rest.split()[0])
    return rates


def test_selection_rate_counts_the_configured_positive_label_not_1(
    strings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = copy_project(strings, tmp_path / "proj")
    write_gates(
        root,
        "evaluation: {test_data: data/test.csv, label: y, positive_label: approved}\n"
        "fairness: {max_disparity: 0.1, protected_attributes: [g], metric: selection_rate}\n",
    )
    report = gates(root)
    rates = _selection_rates(report)
    # `label == 1` made every rate 0 and the disparity 0: a pass whatever the model did.
    assert rates["g=b"] > 0.8 and rates["g=a"] < 0.2, rates
    fairness = only(report, "fairness")
    assert not fairness.passed and fairness.value is not None and fairness.value > 0.6
    assert "selection_rate by g ranges" in fairness.reason
    # The other class as positive: the rates mirror.
    write_gates(
        root,
        "evaluation: {test_data: data/test.csv, label: y, positive_label: denied}\n"
        "fairness: {max_disparity: 0.1, protected_attributes: [g], metric: selection_rate}\n",
    )
    mirrored = _selection_rates(gates(root))
    assert mirrored["g=a"] == pytest.approx(1 - rates["g=a"]) and mirrored["g=b"] == pytest.approx(1 - rates["g=b"])


def test_without_a_configured_positive_the_models_classes_decide(
    strings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = copy_project(strings, tmp_path / "proj")
    write_gates(
        root,
        "evaluation: {test_data: data/test.csv, label: y}\n"
        "performance: {f1_score: {min: 0.5}, auc_roc: {min: 0.5}}\n"
        "fairness: {max_disparity: 0.1, protected_attributes: [g], metric: selection_rate}\n",
    )
    report = gates(root)
    rates = _selection_rates(report)
    assert rates["g=a"] > 0.8 and rates["g=b"] < 0.2, rates  # "denied", scikit-learn's classes_[1]
    import mlflow.sklearn
    import pandas as pd
    from sklearn.metrics import f1_score, roc_auc_score

    model = mlflow.sklearn.load_model(str(root / "models" / "model"))
    test = pd.read_csv(root / "data" / "test.csv")
    expected_f1 = f1_score(test["y"], model.predict(test[["x1"]]), pos_label="denied")
    expected_auc = roc_auc_score(test["y"] == "denied", model.predict_proba(test[["x1"]])[:, 1])
    f1 = only(report, "performance", "f1_score")
    auc = only(report, "performance", "auc_roc")
    assert f1.value == pytest.approx(expected_f1) and f1.reason.endswith("(computed on data/test.csv)")
    assert auc.value == pytest.approx(expected_auc)


def test_a_positive_label_that_is_not_a_label_fails_with_the_labels(
    strings: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = copy_project(strings, tmp_path / "proj")
    write_gates(
        root,
        "evaluation: {test_data: data/test.csv, label: y, positive_label: maybe}\n"
        "fairness: {max_disparity: 0.1, protected_attributes: [g], metric: selection_rate}\n",
    )
    fairness = only(gates(root), "fairness")
    assert not fairness.passed
    assert fairness.reason == (
        "evaluation.positive_label 'maybe' is not a label of the test split or the model (labels: 'approved', 'denied')"
    )


def test_numeric_labels_keep_1_as_the_positive_class(project: Path) -> None:
    write_gates(project, "fairness: {max_disparity: 1.0, protected_attributes: [g], metric: selection_rate}\n")
    import mlflow.sklearn
    import pandas as pd

    model = mlflow.sklearn.load_model(str(project / "models" / "model"))
    test = pd.read_csv(project / "data" / "test.csv")
    predicted = model.predict(test[["x1", "x2"]])
    expected = {f"g={g}": float((predicted[test["g"] == g] == 1).mean()) for g in ("a", "b")}
    assert _selection_rates(gates(project)) == pytest.approx(expected, abs=1e-4)


# -- the size gate -----------------------------------------------------------------------------


def test_the_size_gate_weighs_what_links_point_to(project: Path, tmp_path: Path) -> None:
    store = tmp_path / "store" / "weights"
    store.mkdir(parents=True)
    (store / "blob.bin").write_bytes(os.urandom(3_000_000))
    (project / "models" / "model" / "weights").symlink_to(store, target_is_directory=True)
    (project / "models" / "model" / "head.bin").symlink_to(store / "blob.bin")
    write_gates(project, "size: {max_mb: 5}\n")
    size = only(gates(project), "size")
    assert size.value is not None and size.value > 6.0, size.reason  # the linked folder and the linked file
    assert not size.passed and size.reason.endswith("> 5 MB")


def test_a_link_loop_counts_once_and_a_dangling_link_fails(project: Path) -> None:
    write_gates(project, "size: {max_mb: 5}\n")
    before = only(gates(project), "size").value
    (project / "models" / "model" / "loop").symlink_to(project / "models" / "model", target_is_directory=True)
    assert only(gates(project), "size").value == before
    (project / "models" / "model" / "gone.bin").symlink_to(project / "nowhere.bin")
    size = only(gates(project), "size")
    assert not size.passed and size.value is None
    assert "gone.bin is a broken link: the model cannot be weighed" in size.reason


# -- mlci gates --model X ----------------------------------------------------------------------


def _other_model(project: Path) -> Path:
    """A worse model than the project's: trained on labels flipped for a third of the rows."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    train = pd.read_csv(project / "data" / "train.csv")
    y = train["y"].to_numpy().copy()
    flip = np.random.default_rng(5).random(len(y)) < 0.45
    y[flip] = 1 - y[flip]
    model = LogisticRegression().fit(train[["x1", "x2"]], y)
    path = project / "candidates" / "other"
    from mlflow.models import infer_signature

    signature = infer_signature(train[["x1", "x2"]], model.predict(train[["x1", "x2"]]))
    mlflow.sklearn.save_model(model, str(path), signature=signature, pip_requirements=PIP_REQUIREMENTS)
    return path


def test_gates_with_model_compute_every_figure_for_that_model(project: Path) -> None:
    other = _other_model(project)
    write_gates(project, "performance: {accuracy: {min: 0.7}, auc_roc: {min: 0.7}}\nsize: {max_mb: 5}\n")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run(
        [sys.executable, "-m", "mlci.engine", "gates", "--json", "--model", str(other), str(project)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    data = json.loads(proc.stdout)
    by_check = {r["check"].split()[0]: r for r in data["results"]}
    recorded = json.loads((project / "metrics.json").read_text())
    import mlflow.sklearn
    import pandas as pd
    from sklearn.metrics import accuracy_score

    test = pd.read_csv(project / "data" / "test.csv")
    own = float(accuracy_score(test["y"], mlflow.sklearn.load_model(str(other)).predict(test[["x1", "x2"]])))
    accuracy = by_check["accuracy"]
    assert accuracy["value"] == pytest.approx(own) and accuracy["value"] != recorded["accuracy"]
    assert accuracy["reason"].endswith("(computed on data/test.csv)"), accuracy["reason"]
    assert by_check["auc_roc"]["reason"].endswith("(computed on data/test.csv)")
    assert data["model_uri"] == "candidates/other"
    assert by_check["model"]["reason"].startswith("candidates/other is ")
    # Without --model, the project's own metrics file still speaks for the project's own model.
    assert only(gates(project), "performance", "accuracy").value == recorded["accuracy"]
