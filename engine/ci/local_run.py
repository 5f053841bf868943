"""The local CI worker: `python -m mlci.engine.ci.local_run BARE SHA REF`, started by the post-receive hook.

It records the run as queued and returns at once (the push must not wait for the check),
leaving a detached copy of itself that clones the pushed commit, brings its DVC data from
the remote named in the settings, runs `mlci check --json` on it, and keeps the record up
to date job by job (see `ci.local`). The clone is removed at the end; the log stays.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mlci.engine.ci.local import RUNS_DIR, LocalRun, read_settings, write_run
from mlci.engine.events import GateReport, TierFinished, TierStarted, Verdict, event_from_json

__all__ = ["main"]

_CONCLUSIONS = {Verdict.PASSED: "success", Verdict.HELD: "skipped", Verdict.CANCELLED: "cancelled"}


def _clean_env(settings: dict[str, str]) -> dict[str, str]:
    """The hook's environment without git's own variables (GIT_DIR=. would point every git at the bare repo)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    # The clone has no `.dvc/config.local`, where `core.analytics false` usually lives: without
    # this, every CI run's DVC would start its analytics daemon, which phones home.
    env.setdefault("DVC_NO_ANALYTICS", "1")
    uri = settings.get("tracking_uri") or (
        f"sqlite:///{settings['mlflow_db_path']}" if settings.get("mlflow_db_path") else ""
    )
    if uri:
        env["MLFLOW_TRACKING_URI"] = uri
    return env


def _step(argv: Sequence[str], *, cwd: Path, env: dict[str, str], log: Path) -> bool:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        return subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode == 0


def _check(run: LocalRun, bare: Path, clone: Path, env: dict[str, str], log: Path) -> bool:
    """`mlci check --json` on the clone, the record updated as each tier starts and ends."""
    argv = [sys.executable, "-m", "mlci.engine", "check", "--json", str(clone)]
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        with subprocess.Popen(argv, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=out, text=True) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                out.flush()
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    event = event_from_json(json.loads(line))
                    if isinstance(event, TierStarted):
                        run.job(event.tier.value, "in_progress")
                    elif isinstance(event, TierFinished):
                        run.job(event.tier.value, "completed", _CONCLUSIONS.get(event.verdict, "failure"))
                    elif isinstance(event, GateReport):
                        run.job("gates", "completed", "success" if event.passed else "failure")
                    else:
                        continue
                    write_run(bare, run)
            return proc.wait() == 0


def work(bare: Path, sha: str, ref: str) -> bool:
    """Check `sha` on a fresh clone of `bare`; True when green."""
    settings = read_settings(bare)
    env = _clean_env(settings)
    log = bare / RUNS_DIR / f"{sha}.log"
    run = LocalRun(sha, ref, status="in_progress", log=str(log))
    run.job("clone", "in_progress")
    write_run(bare, run)
    workdir = Path(tempfile.mkdtemp(prefix="mlci-ci-"))
    clone = workdir / "src"
    ok = False
    try:
        ok = _step(["git", "clone", "--quiet", "--no-checkout", str(bare), str(clone)], cwd=workdir, env=env, log=log)
        ok = ok and _step(["git", "checkout", "--quiet", "--detach", sha], cwd=clone, env=env, log=log)
        remote = settings.get("dvc_remote_path")
        if ok and remote and (clone / ".dvc").is_dir():
            dvc = [sys.executable, "-m", "dvc"]
            ok = _step([*dvc, "remote", "add", "--local", "-d", "-f", "ci", remote], cwd=clone, env=env, log=log)
            ok = ok and _step([*dvc, "pull", "-q"], cwd=clone, env=env, log=log)
        run.job("clone", "completed", "success" if ok else "failure")
        write_run(bare, run)
        ok = ok and _check(run, bare, clone, env, log)
    finally:
        run.status, run.conclusion = "completed", "success" if ok else "failure"
        write_run(bare, run)
        shutil.rmtree(workdir, ignore_errors=True)
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    worker = args[:1] == ["--worker"]
    if worker:
        args = args[1:]
    if len(args) != 3:
        print("usage: python -m mlci.engine.ci.local_run BARE SHA REF", file=sys.stderr)
        return 2
    bare, sha, ref = Path(args[0]).resolve(), args[1], args[2]
    if worker:
        return 0 if work(bare, sha, ref) else 1
    write_run(bare, LocalRun(sha, ref, log=str(bare / RUNS_DIR / f"{sha}.log")))
    # Detached: the push returns now; the check goes on in its own session after the pusher has gone.
    subprocess.Popen(
        [sys.executable, "-m", "mlci.engine.ci.local_run", "--worker", str(bare), sha, ref],
        cwd=bare,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    print(f"mlci: local CI queued for {sha[:12]} ({ref.removeprefix('refs/heads/')}): mlci ci status --sha {sha[:12]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
