"""A DVC project nobody prepared for mlci: no MLflow, no mlci.yaml, no gate file, DVCLive's file layout.

Like DVC's own example-get-started, reduced to one stage: `train` reads `params.yaml`,
writes a model file, and logs with DVCLive's layout (`dvclive/metrics.json`, one
`dvclive/plots/metrics/<name>.tsv` per metric, rewritten after every step, as DVCLive
does), which dvc.yaml declares as the pipeline's metrics and plots. Everything is
committed on `main`, after one `dvc repro`, so the tree is clean.

The stage waits `TRAIN_STEP_DELAY` seconds between steps (default 0), and before its last
step until the file `TRAIN_HOLD_FILE` names exists (when set): a test sees the curves grow
while the model tier is still running, then lets it finish.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.dvc_init import dvc_init

__all__ = [
    "TRAIN_PY",
    "build_unprepared_project",
    "copy_project",
    "dvc_repro",
    "git",
    "mlci",
    "mlci_env",
    "porcelain",
    "set_quality",
]

TRAIN_PY = '''\
"""Train a pretend model, logging as DVCLive does (metrics.json + one TSV per metric, each step)."""
import json
import os
import time
from pathlib import Path

import yaml

params = yaml.safe_load(Path("params.yaml").read_text())["train"]
epochs, quality = int(params["epochs"]), float(params["quality"])
delay = float(os.environ.get("TRAIN_STEP_DELAY", "0"))
hold = os.environ.get("TRAIN_HOLD_FILE")  # before its last step, the training waits for this file
live = Path("dvclive")
plots = live / "plots" / "metrics"
plots.mkdir(parents=True, exist_ok=True)
rows = {"accuracy": [], "loss": []}
for step in range(epochs):
    if hold and step == epochs - 1:
        deadline = time.monotonic() + 300
        while not Path(hold).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    accuracy = round(quality * (1 - 0.5 ** (step + 1)), 4)
    loss = round(1 - accuracy, 4)
    for name, value in (("accuracy", accuracy), ("loss", loss)):
        rows[name].append(f"{step}\\t{value}")
        (plots / f"{name}.tsv").write_text(f"step\\t{name}\\n" + "\\n".join(rows[name]) + "\\n")
    (live / "metrics.json").write_text(json.dumps({"step": step, "accuracy": accuracy, "loss": loss}, indent=2))
    time.sleep(delay)
Path("models").mkdir(exist_ok=True)
Path("models/model.pkl").write_bytes(b"m" * 20000 + json.dumps(params).encode())
'''

DVC_YAML = """\
stages:
  train:
    cmd: python src/train.py
    deps:
    - src/train.py
    params:
    - train
    outs:
    - models/model.pkl
    metrics:
    - dvclive/metrics.json:
        cache: false
    plots:
    - dvclive/plots/metrics:
        cache: false
        x: step
"""

UNIT_TEST = """\
def test_arithmetic():
    assert 1 + 1 == 2
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL
    ).stdout


def porcelain(root: Path) -> str:
    """What `git status` tells a user changed: compared before and after every mlci command."""
    return git(root, "status", "--porcelain", "--untracked-files=all", "--ignored=no")


def _params(quality: float, epochs: int) -> str:
    return f"train:\n  epochs: {epochs}\n  quality: {quality}\n"


def set_quality(root: Path, quality: float, *, epochs: int = 6) -> None:
    """Change the training's one knob: a lower quality worsens accuracy (and loss)."""
    (root / "params.yaml").write_text(_params(quality, epochs), encoding="utf-8")


def build_unprepared_project(root: Path, *, quality: float = 0.9, epochs: int = 6) -> Path:
    """The project at `root`: git on main, DVC initialised, the pipeline reproduced, all committed."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "src").mkdir()
    (root / "src" / "train.py").write_text(TRAIN_PY, encoding="utf-8")
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "tests" / "unit" / "test_arith.py").write_text(UNIT_TEST, encoding="utf-8")
    (root / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    set_quality(root, quality, epochs=epochs)
    # What a DVC project ignores; nothing about mlci or MLflow.
    (root / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n", encoding="utf-8")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    git(root, "config", "commit.gpgsign", "false")
    env = mlci_env()  # the stage's `python` is this interpreter, as it is for mlci's model tier
    dvc_init(root, config="[core]\n    autostage = false\n")
    subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "-q"], cwd=root, check=True, env=env, stdin=subprocess.DEVNULL
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "pipeline")
    return root


def mlci_env() -> dict[str, str]:
    """The environment of a user who never set up MLflow: no tracking URI, this venv's `python` first on PATH."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return {**env, "PATH": path, "DVC_NO_ANALYTICS": "1"}


def mlci(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The real `mlci` binary, run in `root` as a user would."""
    binary = Path(sys.executable).parent / "mlci"
    return subprocess.run(
        [str(binary), *args],
        cwd=root,
        env=mlci_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def dvc_repro(root: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "-q"], cwd=root, env=mlci_env(), check=True, stdin=subprocess.DEVNULL
    )


def copy_project(template: Path, dest: Path) -> Path:
    """A private copy of a built project (git and DVC state included), to change freely."""
    shutil.copytree(template, dest, symlinks=True)
    return dest
