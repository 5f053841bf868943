"""Write the configuration mlci infers as an `mlci.yaml`, each value commented with where it came from.

`mlci init` calls `render_config`: what `load_config` decided for a project (tiers, gate file,
MLflow, git, runner) becomes a file the user can read and edit, so nothing mlci does rests
on a guess they cannot see. Loading the written file gives the same configuration back.

A project that does not use MLflow gets its `mlflow:` section as comments only: written
MLflow settings would make mlci start using a store in the project (see `loader._uses_mlflow`).
"""

from __future__ import annotations

import json
from typing import Any

from mlci.engine.config.loader import Config, Origin
from mlci.engine.events import Tier

__all__ = ["render_config"]


def _value(value: Any) -> str:
    """A YAML value: JSON's spelling (JSON is YAML), so lists and strings need no further quoting."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value)


def _origin(origins: dict[str, Origin], key: str) -> str:
    origin = origins.get(key)
    if origin is None:
        return ""
    if origin.kind == "written":  # its old line number means nothing in the file being written
        return f"  # kept: written in {origin.where.rsplit(':', 1)[0]}"
    return f"  # {origin}"


def _tier_lines(config: Config) -> list[str]:
    lines = ["tiers:"]
    for tier, tc in config.tiers.items():
        lines.append(f"  {tier.value}:")
        keys: list[tuple[str, Any]] = [("tests", list(tc.tests)), ("triggers", list(tc.triggers))]
        keys.append(("timeout", tc.timeout))
        if tc.pytest_args:
            keys.append(("pytest_args", list(tc.pytest_args)))
        if tier is Tier.MODEL:
            keys.append(("stages", list(tc.stages)))
        if tc.allow_empty:
            keys.append(("allow_empty", True))
        for key, value in keys:
            lines.append(f"    {key}: {_value(value)}{_origin(config.origins, f'tiers.{tier.value}.{key}')}")
    return lines


def render_config(config: Config) -> str:
    """The text of an `mlci.yaml` that says what `config` says, with the origin of every value."""
    origins = config.origins
    lines = [
        "# mlci.yaml, written by `mlci init`: the configuration mlci inferred for this project.",
        "# Each value says where it came from. Change what is wrong; `mlci config` shows the result.",
        "",
        *(_tier_lines(config) if config.tiers else ["# tiers: none found (no tests/ folder, no dvc.yaml)"]),
        "",
    ]
    if config.gates_path is not None:
        gates = config.gates_path.relative_to(config.root).as_posix()
        lines += [f"gates: {_value(gates)}{_origin(origins, 'gates')}", ""]
    else:
        lines += ["# gates: model_gates.yaml  # none yet: `mlci gates init` writes one from the project's metrics", ""]
    mlflow = config.mlflow
    values = (
        ("tracking_uri", mlflow.tracking_uri),
        ("experiment", mlflow.experiment),
        ("model_name", mlflow.model_name),
    )
    if mlflow.used:
        lines.append("mlflow:")
        for key, value in values:
            origin = origins.get(f"mlflow.{key}")
            # The default store's path is this checkout's: written out, it would follow no clone.
            prefix = "# " if key == "tracking_uri" and origin is not None and origin.kind == "default" else ""
            lines.append(f"  {prefix}{key}: {_value(value)}{_origin(origins, f'mlflow.{key}')}")
    else:
        lines.append("# mlflow: not used by this project (no MLflow setting, MLFLOW_TRACKING_URI, mlflow.db or")
        lines.append("# mlruns/), so mlci creates no MLflow store or run in it. To use one, uncomment:")
        lines.append("# mlflow:")
        lines += [f"#   {key}: {_value(value)}" for key, value in values[1:]]
    lines += ["", "git:"]
    for key, value in (("remote", config.git.remote), ("main_branch", config.git.main_branch)):
        lines.append(f"  {key}: {_value(value)}{_origin(origins, f'git.{key}')}")
    lines.append("")
    if config.python is not None:
        lines += [f"python: {_value(config.python)}{_origin(origins, 'python')}", ""]
    lines.append(f"runner: {_value(config.runner)}{_origin(origins, 'runner')}")
    lines.append(f"runner_idle_timeout: {_value(config.runner_idle_timeout)}{_origin(origins, 'runner_idle_timeout')}")
    lines.append("")
    return "\n".join(lines)
