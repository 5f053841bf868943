"""The environment the project's own commands run in (pytest, `dvc repro`, stage commands)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from mlci.engine.config.tracking_store import QUIET_MLFLOW_ENV

__all__ = ["tool_env"]


def tool_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the project's own commands: this interpreter's bin first on PATH.

    DVC stage commands say `python`; without this they would find whatever python is
    first on the user's PATH rather than the environment mlci (and the project) lives in.
    """
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    for name, value in QUIET_MLFLOW_ENV.items():
        env.setdefault(name, value)
    env.setdefault("DVC_NO_ANALYTICS", "1")
    if extra:
        env.update(extra)
    return env
