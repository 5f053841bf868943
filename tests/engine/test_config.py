"""Config and gate files: inference from the layout, origins, and one-line errors with file and line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.errors import ConfigError
from mlci.engine.events import Tier

from tests.dvc_init import dvc_init

GOOD_GATES = textwrap.dedent(
    """\
    performance: {accuracy: {min: 0.92}, f1_score: {min: 0.88}, auc_roc: {min: 0.95}}
    regression: {max_degradation: 0.01}
    latency: {p50_ms: 10, p95_ms: 30, p99_ms: 50}
    size: {max_mb: 50}
    fairness: {max_disparity: 0.05, protected_attributes: [gender, age_group]}
    behavioral: {test_cases: tests/critical_cases.csv, min_pass_rate: 1.0}
    """
)


def make_layout(root: Path, *, unit: bool = True, data: bool = True, dvc: bool = True) -> Path:
    (root / "tests").mkdir(parents=True)
    if unit:
        (root / "tests" / "unit").mkdir()
    if data:
        (root / "tests" / "data").mkdir()
    if dvc:
        (root / "dvc.yaml").write_text("stages: {}\n")
    return root


def mlci(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_no_config_infers_the_tiers_from_the_layout(tmp_path: Path) -> None:
    make_layout(tmp_path)
    (tmp_path / "model_gates.yaml").write_text(GOOD_GATES)
    config = load_config(tmp_path)
    assert list(config.tiers) == [Tier.CODE, Tier.DATA, Tier.MODEL]
    assert config.tiers[Tier.CODE].tests == ("tests/unit",)
    assert config.tiers[Tier.DATA].tests == ("tests/data",)
    assert "!tests/data/**" in config.tiers[Tier.CODE].triggers
    assert config.source is None
    assert config.origins["tiers.code.tests"].kind == "inferred"
    assert config.gates is not None
    assert [t.metric for t in config.gates.performance] == ["accuracy", "f1_score", "auc_roc"]
    assert config.gates.fairness is not None
    assert config.gates.fairness.protected_attributes == ("gender", "age_group")
    assert config.mlflow.tracking_uri == f"sqlite:///{tmp_path.resolve().as_posix()}/mlflow.db"


def test_plain_tests_folder_is_the_code_tier_without_the_data_tests(tmp_path: Path) -> None:
    make_layout(tmp_path, unit=False, dvc=False)
    config = load_config(tmp_path)
    assert config.tiers[Tier.CODE].tests == ("tests",)
    assert config.tiers[Tier.CODE].pytest_args == ("--ignore=tests/data",)
    assert Tier.MODEL not in config.tiers


def test_written_values_override_and_say_where(tmp_path: Path) -> None:
    make_layout(tmp_path)
    (tmp_path / "mlci.yaml").write_text("tiers:\n  code:\n    timeout: 60\nmlflow:\n  model_name: churn\n")
    config = load_config(tmp_path)
    assert config.tiers[Tier.CODE].timeout == 60
    assert config.tiers[Tier.CODE].tests == ("tests/unit",)
    assert str(config.origins["tiers.code.timeout"]) == "written (mlci.yaml:3)"
    assert config.origins["tiers.code.tests"].kind == "inferred"
    assert config.mlflow.model_name == "churn"


def test_pyproject_tool_table_is_read(tmp_path: Path) -> None:
    make_layout(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.mlci.tiers.code]\ntimeout = 42\n')
    config = load_config(tmp_path)
    assert config.tiers[Tier.CODE].timeout == 42
    assert config.origins["tiers.code.timeout"].where == "pyproject.toml:5"


def test_a_tier_can_be_switched_off(tmp_path: Path) -> None:
    make_layout(tmp_path)
    (tmp_path / "mlci.yaml").write_text("tiers:\n  data: null\n")
    assert Tier.DATA not in load_config(tmp_path).tiers


MALFORMED: list[tuple[str, str, str, int, str]] = [
    # (id, file, content, line, what the message must say)
    ("bad-yaml", "mlci.yaml", "tiers:\n  code: [unclosed\n", 3, "invalid YAML"),
    ("unknown-top-key", "mlci.yaml", "tiers: {}\ntimeouts: 3\n", 2, "unknown key 'timeouts'"),
    ("unknown-tier", "mlci.yaml", "tiers:\n  integration:\n    tests: [x]\n", 2, "unknown key 'integration'"),
    ("timeout-type", "mlci.yaml", "tiers:\n  code:\n    timeout: soon\n", 3, "must be a number of seconds"),
    ("timeout-range", "mlci.yaml", "tiers:\n  code:\n    timeout: -5\n", 3, "out of range"),
    ("triggers-type", "mlci.yaml", "tiers:\n  data:\n    triggers: {a: 1}\n", 3, "must be a list of strings"),
    ("duplicate-key", "mlci.yaml", "git:\n  remote: a\n  remote: b\n", 3, "duplicate key 'remote'"),
    ("gates-bad-yaml", "model_gates.yaml", "performance:\n  accuracy: {min: 0.9\n", 3, "invalid YAML"),
    ("gates-unknown-family", "model_gates.yaml", GOOD_GATES + "robustness: {max: 1}\n", 7, "unknown key 'robustness'"),
    (
        "gates-threshold-range",
        "model_gates.yaml",
        "performance:\n  accuracy:\n    min: 1.5\n",
        3,
        "out of range: 1.5 (must be at most 1)",
    ),
    ("gates-wrong-type", "model_gates.yaml", "size: {max_mb: big}\n", 1, "size.max_mb must be a number"),
    (
        "gates-missing-key",
        "model_gates.yaml",
        "fairness:\n  max_disparity: 0.05\n",
        2,
        "missing 'protected_attributes'",
    ),
    (
        "gates-unknown-bound",
        "model_gates.yaml",
        "performance:\n  f1_score: {minimum: 0.8}\n",
        2,
        "unknown key 'minimum'",
    ),
    ("gates-degradation-range", "model_gates.yaml", "regression: {max_degradation: 2}\n", 1, "out of range"),
]


@pytest.mark.parametrize(
    ("name", "content", "line", "what"), [(f, c, n, w) for _, f, c, n, w in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_files_give_one_line_with_file_and_line_and_exit_2(
    tmp_path: Path, name: str, content: str, line: int, what: str
) -> None:
    make_layout(tmp_path)
    if name != "model_gates.yaml":
        (tmp_path / "model_gates.yaml").write_text(GOOD_GATES)
    (tmp_path / name).write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.line == line
    result = mlci("config", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{name}:{line}: " in lines[0]
    assert what in lines[0]
    assert "Traceback" not in result.stderr


def test_mlci_config_says_which_values_were_inferred_and_which_written(tmp_path: Path) -> None:
    make_layout(tmp_path)
    (tmp_path / "model_gates.yaml").write_text(GOOD_GATES)
    (tmp_path / "mlci.yaml").write_text("mlflow:\n  model_name: churn\n")
    result = mlci("config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'tiers.code.tests = ["tests/unit"]    # inferred (tests/unit exists)' in out
    assert 'mlflow.model_name = "churn"    # written (mlci.yaml:2)' in out
    assert "# gates: model_gates.yaml (valid)" in out
    assert "gate.performance.accuracy.min = 0.92" in out


def test_mlci_config_on_a_dvc_project_with_no_config_at_all(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc_init(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages:\n  train:\n    cmd: python train.py\n")
    (tmp_path / "tests").mkdir()
    result = mlci("config", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import json

    data = json.loads(result.stdout)
    assert set(data["tiers"]) == {"code", "model"}
    assert data["gates"] is None
    assert data["origins"]["tiers.model.tests"] == "inferred (dvc.yaml exists)"
