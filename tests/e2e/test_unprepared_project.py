"""The real `mlci-tui` on a DVC project nobody prepared for mlci (issue 15), driven through tmux.

The project (tests/unprepared_projects.py) has no MLflow, no mlci config and no gate file:
one DVC stage that logs with DVCLive's layout, committed on main. The dashboard must show
what the project already has without a key pressed (its DVC metrics, their diff against
main, DVC's plots), say how to get a gate file, follow the DVCLive curves while the model
tier retrains, and leave the tree as it found it: no MLflow store, no untracked file.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.tmux import Tmux
from tests.unprepared_projects import build_unprepared_project, mlci_env, porcelain, set_quality

pytestmark = pytest.mark.e2e

MLCI_TUI = str(Path(sys.executable).parent / "mlci-tui")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return build_unprepared_project(tmp_path / "project")


def _open(tmux: Tmux, project: Path) -> str:
    path = mlci_env()["PATH"]
    # `env -u`: the user never set up MLflow, whatever the test process inherited.
    tmux.start(
        ["env", "-u", "MLFLOW_TRACKING_URI", "-u", "MLFLOW_RUN_ID", MLCI_TUI, str(project)],
        env={
            "NO_COLOR": "1",
            "PATH": path,
        },
    )
    return tmux.wait_for("watching", timeout=120)


def test_the_dashboard_shows_the_dvc_metrics_and_diff_follows_dvclive_and_leaves_no_trace(
    project: Path, tmux: Tmux
) -> None:
    before = porcelain(project)
    assert before == ""
    tmux.width, tmux.height = 160, 45
    _open(tmux, project)
    # Without a key pressed: the project's metrics, today and on main, and the way to a gate file.
    screen = tmux.wait_for("no MLflow run · DVC metrics, 2 plots", timeout=120)
    assert "DVC metrics (dvclive/metrics.json)" in screen
    assert re.search(r"accuracy\s+0\.8859\s+0\.8859\s+\+0\.0000", screen), screen
    assert re.search(r"loss\s+0\.1141\s+0\.1141\s+\+0\.0000", screen), screen
    assert "`mlci gates init`" in screen
    screen = tmux.wait_for("code  ● passed", timeout=300)  # the start-up run
    assert porcelain(project) == before
    # A worse model: the model tier retrains, DVCLive's curves come live, then the diff against main.
    set_quality(project, 0.8)
    screen = tmux.wait_for("DVCLive ·", timeout=300)
    screen = tmux.wait_for("model ● passed", timeout=300)
    screen = tmux.wait_for("0.7875", timeout=120)
    assert re.search(r"accuracy\s+0\.7875\s+0\.8859\s+-0\.0984", screen), screen
    assert "DVCLive · 2 metrics · 12 points" in screen, screen  # accuracy and loss, six steps each
    tmux.send_keys("q")
    tmux.wait_until_dead(timeout=60)
    # What changed is the user's edit and what their own stage wrote; mlci added nothing.
    changed = sorted(line[3:] for line in porcelain(project).splitlines())
    assert changed == [
        "dvc.lock",
        "dvclive/metrics.json",
        "dvclive/plots/metrics/accuracy.tsv",
        "dvclive/plots/metrics/loss.tsv",
        "params.yaml",
    ]
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()
