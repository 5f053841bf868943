"""A DVC project's metrics, their diff against main and its line plots, read through DVC's API as `DvcMetrics`.

Real DVC on a project built like a user's (tests/unprepared_projects.py); nothing in the
project changes by reading it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from mlci.engine.config.loader import load_config
from mlci.engine.events import DvcMetrics, MetricPoint, event_from_json, event_to_json
from mlci.engine.loop.last_state import last_known_state
from mlci.engine.telemetry.dvc_metrics import read_dvc_metrics_event

from tests.loop_projects import EventLog, make_project
from tests.unprepared_projects import build_unprepared_project, copy_project, dvc_repro, mlci, porcelain, set_quality


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_unprepared_project(tmp_path_factory.mktemp("unprepared") / "project")


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    return copy_project(template, tmp_path / "project")


def test_the_metrics_their_value_on_main_and_the_line_plots_are_read(project: Path) -> None:
    event = read_dvc_metrics_event(project)
    assert event.errors == ()
    assert event.diff_against == "main"
    values = {(m.source, m.key): (m.value, m.old) for m in event.values}
    # DVCLive's `step` is the curves' x axis, not a metric.
    assert values == {
        ("dvclive/metrics.json", "accuracy"): (0.8859, 0.8859),
        ("dvclive/metrics.json", "loss"): (0.1141, 0.1141),
    }
    plots = {p.y: p for p in event.plots}
    assert set(plots) == {"accuracy", "loss"}
    assert plots["loss"].source == "dvclive/plots/metrics/loss.tsv" and plots["loss"].x == "step"
    assert plots["loss"].xs == (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
    assert plots["loss"].ys[0] == 0.55 and plots["loss"].ys[-1] == 0.1141
    assert porcelain(project) == ""


def test_after_a_change_the_diff_shows_main_beside_the_new_value(project: Path) -> None:
    set_quality(project, 0.8)
    dvc_repro(project)
    event = read_dvc_metrics_event(project)
    accuracy = next(m for m in event.values if m.key == "accuracy")
    assert (accuracy.value, accuracy.old) == (0.7875, 0.8859)


def test_without_a_main_branch_there_is_nothing_to_diff_against(project: Path) -> None:
    event = read_dvc_metrics_event(project, "trunk")
    assert event.diff_against == ""
    assert all(m.old is None for m in event.values) and event.values


def test_the_event_survives_json_as_the_headless_stream_carries_it(project: Path) -> None:
    event = read_dvc_metrics_event(project)
    again = event_from_json(json.loads(json.dumps(event_to_json(event))))
    assert again == event


def test_the_dashboard_opens_on_the_dvc_metrics_of_a_project_without_mlflow(project: Path) -> None:
    log = EventLog()
    last_known_state(load_config(project), log)
    shown = [e for e in log.snapshot() if isinstance(e, DvcMetrics)]
    assert len(shown) == 1 and shown[0].values and shown[0].plots
    assert not any(isinstance(e, MetricPoint) for e in log.snapshot())
    assert porcelain(project) == ""
    assert not (project / "mlflow.db").exists()


@pytest.mark.parametrize("kind", ["a git project without DVC", "a plain folder"])
def test_a_project_outside_dvc_has_no_dvc_metrics_and_is_not_copied_into_the_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # what TMPDIR decides, for this process
    project = tmp_path / "project"
    if kind == "a git project without DVC":
        make_project(project, tests={"tests/test_ok.py": "def test_ok():\n    assert True\n"})
    else:
        project.mkdir()
    event = read_dvc_metrics_event(project)
    # DVC's Repo.open cloned such a git repository into TMPDIR (tmp*dvc-clone, tmp*dvc-cache), and never removed it.
    assert sorted(p.name for p in temp.iterdir()) == []
    # Nothing to show, and nothing wrong: the panel says "no DVC metrics".
    assert (event.values, event.diff_against, event.plots, event.errors) == ((), "", (), ())


def test_mlci_report_shows_the_dvc_metrics_against_main_and_dvc_plots_without_a_gate_file(project: Path) -> None:
    set_quality(project, 0.8)
    dvc_repro(project)
    before = porcelain(project)
    done = mlci(project, "report")
    assert done.returncode == 0, done.stdout + done.stderr
    text = (project / ".mlci" / "report" / "report.md").read_text()
    assert "## DVC metrics against `main`" in text
    assert "| dvclive/metrics.json | accuracy | 0.7875 | 0.8859 | -0.0984 |" in text
    assert "No gate file yet: `mlci gates init`" in text
    assert "![DVC plots](report_assets/dvc_plots.png)" in text
    assert (project / ".mlci" / "report" / "report_assets" / "dvc_plots.png").stat().st_size > 0
    assert porcelain(project) == before  # the report lives under .mlci/, which git ignores
    assert not (project / "mlflow.db").exists()


def test_dvclives_last_curves_come_at_open_when_dvc_has_no_plots_of_them(project: Path) -> None:
    dvc_yaml = project / "dvc.yaml"
    dvc_yaml.write_text(dvc_yaml.read_text().split("    plots:\n")[0])  # DVCLive logs; dvc.yaml names no plots
    log = EventLog()
    last_known_state(load_config(project), log)
    (shown,) = [e for e in log.snapshot() if isinstance(e, DvcMetrics)]
    assert shown.plots == ()
    points = [e for e in log.snapshot() if isinstance(e, MetricPoint)]
    assert {p.mlflow_run_id for p in points} == {"dvclive:dvclive"}
    assert sorted(p.step for p in points if p.key == "accuracy") == [0, 1, 2, 3, 4, 5]
