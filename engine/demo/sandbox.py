"""Build a demo sandbox: a copy of `sample_project/` with git, DVC, MLflow and a git remote, all local.

The sandbox is a real project a user could have made by hand:

    DIR/                       the project (a git repository, DVC initialised)
    DIR/mlflow.db              the MLflow tracking store (sqlite), git-ignored
    DIR/.sandbox/remote.git    a bare repository, the project's `origin`
    DIR/.sandbox/dvc-remote    the project's default DVC remote

`.sandbox/` is excluded through `.git/info/exclude`, so the working tree stays the sample
project's own. One quick pipeline run is committed and its model registered with the
alias `champion`, so that the regression gate has a baseline from the first minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from mlci.engine.errors import MlciError
from mlci.engine.run.tool_env import tool_env

__all__ = ["SANDBOX_DIR", "build_sandbox", "sample_project_source"]

SANDBOX_DIR = ".sandbox"
"""Inside the sandbox: the bare git remote and the DVC remote, excluded from git."""

_ANYWHERE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".testmondata*", "*.egg-info")
_TOP_LEVEL = frozenset(
    {"mlflow.db", "mlruns", "mlartifacts", ".mlci", ".dvc", ".git", "data", "models", "metrics.json", "dvc.lock"}
)
"""What a run of the sample project leaves behind: the sandbox makes its own."""


def _copy_ignore(source: Path) -> Callable[[str, list[str]], set[str]]:
    def ignore(directory: str, names: list[str]) -> set[str]:
        ignored = set(_ANYWHERE(directory, names))
        if Path(directory) == source:
            ignored |= _TOP_LEVEL.intersection(names)
        return ignored

    return ignore


def sample_project_source() -> Path:
    """The `sample_project/` this checkout ships (overridable with MLCI_SAMPLE_PROJECT)."""
    override = os.environ.get("MLCI_SAMPLE_PROJECT")
    source = Path(override) if override else Path(__file__).resolve().parents[2] / "sample_project"
    if not (source / "dvc.yaml").is_file():
        raise MlciError(f"no sample project at {source} (set MLCI_SAMPLE_PROJECT to its path)")
    return source


class _Steps:
    """Runs the set-up commands, reporting each; a failure says which step and why."""

    def __init__(self, root: Path, env: dict[str, str], progress: Callable[[str], None]) -> None:
        self.root = root
        self.env = env
        self.progress = progress

    def run(self, what: str, *argv: str, env: Mapping[str, str] | None = None) -> str:
        self.progress(what)
        proc = subprocess.run(
            argv,
            cwd=self.root,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise MlciError(f"demo: {what} failed ({' '.join(argv[:3])} exit {proc.returncode}):\n{tail}")
        return proc.stdout

    def git(self, what: str, *args: str) -> str:
        return self.run(what, "git", *args)

    def dvc(self, what: str, *args: str) -> str:
        return self.run(what, sys.executable, "-m", "dvc", *args)


def _register_champion(root: Path, tracking_uri: str, model_name: str) -> str:
    """Register the model of the committed training run and alias it `champion`.

    Runs in a child interpreter: `mlflow.register_model` only speaks to the process-wide
    tracking URI, and setting that here would leak into whatever called `build_sandbox`.
    """
    run_info = json.loads((root / "models" / "train_run.json").read_text(encoding="utf-8"))
    # MLflow 3 keeps a logged model apart from its run's artifacts: register it by its own URI.
    source = run_info.get("logged_model_uri") or f"runs:/{run_info['mlflow_run_id']}/model"
    script = (
        "import sys, mlflow\n"
        "from mlflow.tracking import MlflowClient\n"
        "uri, source, name = sys.argv[1:4]\n"
        "mlflow.set_tracking_uri(uri)\n"
        "version = mlflow.register_model(source, name).version\n"
        "MlflowClient(uri).set_registered_model_alias(name, 'champion', version)\n"
        "print(version)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, tracking_uri, source, model_name],
        cwd=root,
        env=tool_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise MlciError(f"demo: registering the champion failed:\n{proc.stderr.strip()[-1500:]}")
    return proc.stdout.strip().splitlines()[-1]


def build_sandbox(target: Path | str, *, progress: Callable[[str], None] = print) -> Path:
    """Build the demo sandbox at `target`, which must not exist or be empty; returns its path."""
    root = Path(target).resolve()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise MlciError(f"demo: {root} is not empty; give a new or empty directory")
    source = sample_project_source()
    root.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, root, ignore=_copy_ignore(source), dirs_exist_ok=True)
    # Reference statistics for the drift test are part of the project, not DVC data.
    if (source / "data" / "reference").is_dir():
        shutil.copytree(source / "data" / "reference", root / "data" / "reference")

    tracking_uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    env = tool_env({"MLFLOW_TRACKING_URI": tracking_uri, "MLCI_TRAIN_MODE": "quick"})
    env.pop("MLFLOW_RUN_ID", None)
    steps = _Steps(root, env, progress)
    sandbox = root / SANDBOX_DIR
    remote = sandbox / "remote.git"
    dvc_remote = sandbox / "dvc-remote"
    sandbox.mkdir()

    steps.git("git init", "init", "-q", "-b", "main")
    steps.git("git identity", "config", "user.name", "mlci demo")
    steps.git("git identity", "config", "user.email", "demo@mlci.invalid")
    with (root / ".git" / "info" / "exclude").open("a", encoding="utf-8") as exclude:
        exclude.write(f"\n# mlci demo: the local git and DVC remotes\n/{SANDBOX_DIR}/\n")
    steps.dvc("dvc init", "init", "-q")
    # The remote is a path on this machine: it goes in the untracked config.local, as a user's would.
    steps.dvc("DVC remote", "remote", "add", "--local", "-d", "local", str(dvc_remote))
    steps.dvc("DVC analytics off", "config", "--local", "core.analytics", "false")
    steps.run(
        "generate the data",
        sys.executable,
        "-m",
        "credit.generate",
        "--out",
        "data/raw/credit.csv",
        env={"PYTHONPATH": str(root / "src")},
    )
    steps.dvc("dvc add the data", "add", "-q", "data/raw/credit.csv")
    steps.git("first commit", "add", "-A")
    steps.git("first commit", "commit", "-q", "-m", "Sample credit-default project")

    steps.dvc("quick pipeline run (dvc repro)", "repro")
    steps.git("commit the pipeline run", "add", "-A")
    steps.git("commit the pipeline run", "commit", "-q", "-m", "Train the baseline model (quick mode)")
    steps.dvc("dvc push to the local remote", "push", "-q")

    from mlci.engine.config.loader import load_config

    model_name = load_config(root, with_gates=False).mlflow.model_name
    progress(f"register the model as {model_name}@champion")
    version = _register_champion(root, tracking_uri, model_name)

    steps.git("bare remote", "init", "-q", "--bare", "-b", "main", str(remote))
    steps.git("origin", "remote", "add", "origin", str(remote))
    steps.git("push to origin", "push", "-q", "-u", "origin", "main")
    # From now on, every push to the sandbox's remote is checked there, as a hosted CI would.
    from mlci.engine.ci.local import install_hook

    progress("local CI on the remote (post-receive hook)")
    install_hook(remote, settings={"dvc_remote_path": "../dvc-remote", "mlflow_db_path": "../../mlflow.db"})
    progress(f"champion: {model_name} version {version}")
    return root
