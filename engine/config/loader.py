"""The effective configuration: `mlci.yaml` or `[tool.mlci]`, with the rest inferred from the layout.

Every value records where it came from ("written" at file:line, "inferred" from the
layout, or a built-in "default") so `mlci config` can say so, and so can an error.

    tiers:
      code:  {tests: [tests/unit], triggers: ["**/*.py"], timeout: 300, pytest_args: [], allow_empty: false}
      data:  {tests: [tests/data], triggers: ["tests/data/**"], timeout: 1800}
      model: {stages: [], tests: [tests/model], triggers: [], timeout: 7200}
    gates: model_gates.yaml
    mlflow: {tracking_uri: "sqlite:///mlflow.db", experiment: mlci, model_name: model}
    git: {remote: origin, main_branch: main}
    ci: {provider: github, api_url: https://ghe.example.com/api/v3}   # only for a host not github.com/gitlab.com
    ci: {provider: jenkins, api_url: https://jenkins.example.com, job: ml/credit}     # Jenkins: always
    ci: {provider: azure, api_url: https://dev.azure.com/acme, project: credit}      # Azure, for a repo elsewhere
    python: .venv/bin/python        # the tiers' interpreter (default: .venv, venv, $VIRTUAL_ENV, mlci's)
    runner: warm                    # or cold: a fresh interpreter for every code and data run
    runner_idle_timeout: 1800       # seconds before an unused warm server exits
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlci.engine.config.gate_file import GateSpec, load_gate_spec
from mlci.engine.config.patterns import PatternSet
from mlci.engine.config.redact import mask_credentials
from mlci.engine.config.yaml_nodes import Node, load_toml_table, load_yaml, type_name
from mlci.engine.errors import ConfigError
from mlci.engine.events import TIER_ORDER, Tier

__all__ = ["Config", "Origin", "TierConfig", "load_config"]

CONFIG_FILE = "mlci.yaml"
GATE_FILE = "model_gates.yaml"

DEFAULT_TIMEOUTS: dict[Tier, float] = {Tier.CODE: 300.0, Tier.DATA: 1800.0, Tier.MODEL: 7200.0}
"""Per-tier timeouts in seconds: a hung test is killed, with its process group, at these."""
MAX_TIMEOUT_S = 366 * 24 * 3600.0
"""The longest timeout a tier may have (a year): beyond it, waits overflow the platform's timers."""

DEFAULT_RUNNER_IDLE_S = 1800.0
"""A warm server that ran nothing for this long exits: its preloaded modules hold memory."""
RUNNERS = ("warm", "cold")

DATA_TRIGGERS = ("**/*.dvc", "dvc.lock")
"""The data tier also runs when a DVC-tracked output's content changes (found by the planner)."""
MODEL_TRIGGERS = ("dvc.yaml", "params.yaml")
"""The model tier also runs when a dependency of a DVC stage changes (from DVC's stage graph)."""


@dataclass(frozen=True)
class Origin:
    """Where a config value came from."""

    kind: str
    """"written", "inferred" or "default"."""
    where: str = ""
    """file:line for written values; the evidence for inferred ones."""

    def __str__(self) -> str:
        return f"{self.kind} ({self.where})" if self.where else self.kind


@dataclass(frozen=True)
class TierConfig:
    """One tier: what it runs, what triggers it, and how long it may take."""

    tier: Tier
    tests: tuple[str, ...] = ()
    """pytest paths; for the model tier, tests run after the stages (behavioral checks)."""
    triggers: tuple[str, ...] = ()
    """Path patterns (gitignore-style, `**` allowed, `!` negates) that make this tier run."""
    timeout: float = 300.0
    pytest_args: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    """Model tier only: DVC stage targets to consider; empty means the whole pipeline."""
    allow_empty: bool = False
    """Whether a run that collects no test (pytest exit 5) is green; by default it is red, "no tests ran"."""


@dataclass(frozen=True)
class MlflowConfig:
    tracking_uri: str
    experiment: str = "mlci"
    model_name: str = "model"
    """The registered model whose `champion` alias is the regression baseline."""
    used: bool = True
    """Whether the project uses MLflow (`_uses_mlflow`): when not, mlci creates no MLflow store or run in its tree."""


@dataclass(frozen=True)
class GitConfig:
    remote: str = "origin"
    main_branch: str = "main"


@dataclass(frozen=True)
class CiConfig:
    """`ci:`: where the remote CI runs are followed, for a git host that is not github.com or gitlab.com."""

    provider: str | None = None
    """"github", "gitlab", "jenkins" or "azure"; None: told by the remote's host (github.com, gitlab.com, Azure)."""
    api_url: str | None = None
    """The API the CI token may be sent to (GitHub Enterprise, self-managed GitLab, the Jenkins server, an Azure
    DevOps organization URL); None: the public one."""
    job: str | None = None
    """Jenkins: the job's path (`folder/job`; a multibranch project's branch jobs are searched); None: the remote's."""
    project: str | None = None
    """Azure Pipelines: the project, for a repository that is not on Azure Repos; None: the remote's."""


@dataclass(frozen=True)
class Config:
    root: Path
    tiers: dict[Tier, TierConfig]
    """Only the tiers this project has, in gating order."""
    gates_path: Path | None
    gates: GateSpec | None
    mlflow: MlflowConfig
    git: GitConfig
    source: Path | None
    """The file the config was read from; None when everything was inferred."""
    origins: dict[str, Origin] = field(default_factory=dict)
    """Dotted key -> where its value came from."""
    ci: CiConfig = field(default_factory=CiConfig)
    python: str | None = None
    """`python:`: the interpreter that runs the tiers (an absolute path, checked at load); None: found by mlci."""
    runner: str = "warm"
    """`runner:`: "warm" (a preloaded server forks each code and data run) or "cold" (a fresh interpreter each)."""
    runner_idle_timeout: float = DEFAULT_RUNNER_IDLE_S
    """`runner_idle_timeout:`: seconds a warm server waits for its next run before it exits."""

    def tier(self, tier: Tier) -> TierConfig | None:
        return self.tiers.get(tier)

    def as_dict(self) -> dict[str, Any]:
        tiers: dict[str, Any] = {}
        for tier, tc in self.tiers.items():
            entry: dict[str, Any] = {"tests": list(tc.tests), "triggers": list(tc.triggers), "timeout": tc.timeout}
            if tc.pytest_args:
                entry["pytest_args"] = list(tc.pytest_args)
            if tc.allow_empty:
                entry["allow_empty"] = True
            if tier is Tier.MODEL:
                entry["stages"] = list(tc.stages)
            tiers[tier.value] = entry
        return {
            "tiers": tiers,
            "gates": str(self.gates_path.relative_to(self.root)) if self.gates_path else None,
            "mlflow": dict(self.mlflow.__dict__),
            "git": dict(self.git.__dict__),
            **({"ci": {k: v for k, v in self.ci.__dict__.items() if v is not None}} if self.ci != CiConfig() else {}),
            "python": self.python,
            "runner": self.runner,
            "runner_idle_timeout": self.runner_idle_timeout,
        }


_TIER_KEYS = {"tests", "triggers", "timeout", "pytest_args", "stages", "allow_empty"}
_TOP_KEYS = {"tiers", "gates", "mlflow", "git", "ci", "python", "runner", "runner_idle_timeout"}


def _str_list(node: Node, what: str) -> tuple[str, ...]:
    value = node.value
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise node.error(f"{what} must be a list of strings, got {type_name(value)}")
    out = []
    for item in value:
        if not isinstance(item.value, str):
            raise item.error(f"{what} entries must be strings, got {type_name(item.value)}")
        out.append(item.value)
    return tuple(out)


def _check_patterns(node: Node, what: str) -> None:
    """Trigger patterns compile at load time, so a bad one names its line instead of failing the first plan."""
    for item in node.value if isinstance(node.value, list) else [node]:
        try:
            PatternSet([item.value])
        except re.error as exc:
            raise item.error(f"{what}: {item.value!r} is not a valid pattern ({exc.msg})") from None


def _string(node: Node, what: str) -> str:
    if not isinstance(node.value, str) or not node.value:
        raise node.error(f"{what} must be a non-empty string, got {type_name(node.value)}")
    return node.value


def _where(node: Node, root: Path) -> str:
    try:
        name = node.path.relative_to(root)
    except ValueError:
        name = node.path
    return f"{name}:{node.line}"


def _infer_tiers(root: Path) -> dict[Tier, tuple[TierConfig, str]]:
    """Default tiers from the layout, each with the evidence that made us infer it."""
    found: dict[Tier, tuple[TierConfig, str]] = {}
    tests = root / "tests"
    data_dir = tests / "data"
    model_dir = tests / "model"
    other_tests = [p for p in (data_dir, model_dir) if p.is_dir()]
    excludes = tuple(f"!{p.relative_to(root).as_posix()}/**" for p in other_tests)
    if (tests / "unit").is_dir():
        code = TierConfig(Tier.CODE, ("tests/unit",), ("**/*.py", *excludes), DEFAULT_TIMEOUTS[Tier.CODE])
        found[Tier.CODE] = (code, "tests/unit exists")
    elif tests.is_dir():
        ignores = tuple(f"--ignore={p.relative_to(root).as_posix()}" for p in other_tests)
        code = TierConfig(Tier.CODE, ("tests",), ("**/*.py", *excludes), DEFAULT_TIMEOUTS[Tier.CODE], ignores)
        found[Tier.CODE] = (code, "tests/ exists")
    if data_dir.is_dir():
        data = TierConfig(Tier.DATA, ("tests/data",), ("tests/data/**", *DATA_TRIGGERS), DEFAULT_TIMEOUTS[Tier.DATA])
        found[Tier.DATA] = (data, "tests/data exists")
    if (root / "dvc.yaml").is_file():
        model_tests = ("tests/model",) if model_dir.is_dir() else ()
        triggers = (*MODEL_TRIGGERS, *(("tests/model/**",) if model_tests else ()))
        model = TierConfig(Tier.MODEL, model_tests, triggers, DEFAULT_TIMEOUTS[Tier.MODEL])
        found[Tier.MODEL] = (model, "dvc.yaml exists")
    return found


def _tier_from_node(
    tier: Tier, node: Node, base: TierConfig | None, root: Path, origins: dict[str, Origin]
) -> TierConfig:
    fields = node.fields(f"tiers.{tier.value}", _TIER_KEYS)
    if "stages" in fields and tier is not Tier.MODEL:
        raise fields["stages"].error(f"tiers.{tier.value}.stages: only the model tier runs DVC stages")
    values: dict[str, Any] = {}
    if base is not None:
        values = {k: getattr(base, k) for k in ("tests", "triggers", "timeout", "pytest_args", "stages", "allow_empty")}
    else:
        values = {"timeout": DEFAULT_TIMEOUTS[tier]}
    for key, child in fields.items():
        what = f"tiers.{tier.value}.{key}"
        if key == "timeout":
            values[key] = child.number(what, low=0.0, low_open=True, high=MAX_TIMEOUT_S, unit="seconds")
        elif key == "allow_empty":
            if not isinstance(child.value, bool):
                raise child.error(f"{what} must be true or false, got {type_name(child.value)}")
            values[key] = child.value
        else:
            values[key] = _str_list(child, what)
            if key == "triggers":
                _check_patterns(child, what)
        origins[what] = Origin("written", _where(child, root))
    return TierConfig(tier, **values)


def _read_source(root: Path) -> Node | None:
    yaml_path = root / CONFIG_FILE
    if yaml_path.is_file():
        return load_yaml(yaml_path)
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        return load_toml_table(pyproject, "tool.mlci")
    return None


def _default_tracking_uri(root: Path, *, used: bool) -> tuple[str, Origin]:
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env, Origin("inferred", "MLFLOW_TRACKING_URI")
    uri = f"sqlite:///{(root / 'mlflow.db').as_posix()}"
    return uri, Origin("default", "embedded sqlite store" if used else f"embedded sqlite store; {NOT_USED}")


NOT_USED = "unused: the project does not use MLflow (no mlflow setting, MLFLOW_TRACKING_URI, mlflow.db or mlruns/)"
"""Why mlci leaves MLflow alone in a project: it creates no store and no run there (`MlflowConfig.used`)."""


def _has_local_store(root: Path) -> bool:
    return (root / "mlflow.db").is_file() or (root / "mlruns").is_dir()


def _uses_mlflow(written: dict[str, str], root: Path) -> bool:
    """A project uses MLflow when mlci's config says anything about it, the environment names a store, or one is there.

    Otherwise mlci must not make it start: an unprepared DVC project keeps a clean `git status`.
    """
    return bool(written) or bool(os.environ.get("MLFLOW_TRACKING_URI")) or _has_local_store(root)


def _section(
    fields: dict[str, Node], name: str, allowed: set[str], root: Path, origins: dict[str, Origin]
) -> dict[str, str]:
    if name not in fields:
        return {}
    out = {}
    for key, child in fields[name].fields(name, allowed).items():
        out[key] = _string(child, f"{name}.{key}")
        origins[f"{name}.{key}"] = Origin("written", _where(child, root))
    return out


CI_PROVIDERS = ("github", "gitlab", "jenkins", "azure", "local")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def _ci(fields: dict[str, Node], root: Path, origins: dict[str, Origin]) -> CiConfig:
    values = _section(fields, "ci", {"provider", "api_url", "job", "project"}, root, origins)
    if not values:
        return CiConfig()
    nodes = fields["ci"].mapping("ci")
    provider = values.get("provider")
    if provider is not None and provider not in CI_PROVIDERS:
        raise nodes["provider"].error(f"ci.provider must be one of {', '.join(CI_PROVIDERS)}, got {provider!r}")
    for key, owner in (("job", "jenkins"), ("project", "azure")):
        if key in values and provider != owner:
            raise nodes[key].key_error(f"ci.{key} is for ci.provider {owner} only")
    if provider == "jenkins" and "api_url" not in values:
        raise nodes["provider"].error("ci.provider jenkins needs ci.api_url: the Jenkins server's URL")
    api_url = values.get("api_url")
    if api_url is not None:
        node = nodes["api_url"]
        if provider is None:
            raise node.key_error("ci.api_url needs ci.provider (github, gitlab, jenkins or azure): it is not guessed")
        parsed = urlsplit(api_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise node.error(f"ci.api_url must be an http(s) URL, got {mask_credentials(api_url)!r}")
        if parsed.username is not None or parsed.password is not None:
            raise node.error("ci.api_url must not hold credentials: the token comes from the environment")
        if parsed.scheme == "http" and parsed.hostname not in _LOOPBACK_HOSTS:
            raise node.error("ci.api_url must be https: over plain http the token would cross the network readable")
    return CiConfig(
        provider=provider,
        api_url=api_url.rstrip("/") if api_url else None,
        job=values.get("job"),
        project=values.get("project"),
    )


def _gates_path(fields: dict[str, Node], root: Path, origins: dict[str, Origin]) -> Path | None:
    if "gates" in fields:
        node = fields["gates"]
        path = root / _string(node, "gates")
        if not path.is_file():
            raise node.error(f"gates: no such file {node.value!r}")
        origins["gates"] = Origin("written", _where(node, root))
        return path
    if (root / GATE_FILE).is_file():
        origins["gates"] = Origin("inferred", f"{GATE_FILE} exists")
        return root / GATE_FILE
    return None


def _python(fields: dict[str, Node], root: Path, origins: dict[str, Origin]) -> str | None:
    """`python:` as an absolute path to an executable: a path (relative to the root) or a command on PATH."""
    if "python" not in fields:
        return None
    node = fields["python"]
    value = _string(node, "python")
    path = Path(value).expanduser()
    if not path.is_absolute() and os.sep not in value:
        found = shutil.which(value)
        path = Path(found) if found else root / path
    elif not path.is_absolute():
        path = root / path
    if not path.is_file() or not os.access(path, os.X_OK):
        raise node.error(f"python: no such interpreter {value!r}")
    origins["python"] = Origin("written", _where(node, root))
    return str(path)


def _runner(fields: dict[str, Node], root: Path, origins: dict[str, Origin]) -> tuple[str, float]:
    runner, idle = "warm", DEFAULT_RUNNER_IDLE_S
    origins["runner"] = Origin("default", "built-in")
    origins["runner_idle_timeout"] = Origin("default", "built-in")
    if "runner" in fields:
        node = fields["runner"]
        if node.value not in RUNNERS:
            raise node.error(f"runner must be one of {', '.join(RUNNERS)}, got {node.value!r}")
        runner = str(node.value)
        origins["runner"] = Origin("written", _where(node, root))
    if "runner_idle_timeout" in fields:
        node = fields["runner_idle_timeout"]
        # node.number: NaN (which passed `v <= 0`), infinity and overflow fail here, at the line.
        idle = node.number("runner_idle_timeout", low=0.0, low_open=True, high=MAX_TIMEOUT_S, unit="seconds")
        origins["runner_idle_timeout"] = Origin("written", _where(node, root))
    return runner, idle


def load_config(root: Path | str = ".", *, with_gates: bool = True) -> Config:
    """The effective config of the project at `root`; raises ConfigError on a malformed file."""
    root = Path(root).resolve()
    source = _read_source(root)
    fields = source.fields("the config", _TOP_KEYS) if source is not None else {}
    origins: dict[str, Origin] = {}
    inferred = _infer_tiers(root)

    tiers: dict[Tier, TierConfig] = {}
    written_tiers = fields["tiers"].fields("tiers", {t.value for t in Tier}) if "tiers" in fields else {}
    for tier in TIER_ORDER:
        base = inferred.get(tier)
        if tier.value in written_tiers:
            node = written_tiers[tier.value]
            if node.value is None or node.value is False:
                origins[f"tiers.{tier.value}"] = Origin("written", f"{_where(node, root)} (disabled)")
                continue
            tiers[tier] = _tier_from_node(tier, node, base[0] if base else None, root, origins)
            if not tiers[tier].tests and tier is not Tier.MODEL:
                raise node.error(f"tiers.{tier.value} needs 'tests' (the pytest paths it runs)")
        elif base is not None:
            tiers[tier] = base[0]
        else:
            continue
        for key in ("tests", "triggers", "timeout", *(("stages",) if tier is Tier.MODEL else ())):
            dotted = f"tiers.{tier.value}.{key}"
            if dotted not in origins:
                origins[dotted] = Origin("inferred", base[1]) if base else Origin("default", "built-in")

    gates_path = _gates_path(fields, root, origins)

    mlflow_values = _section(fields, "mlflow", {"tracking_uri", "experiment", "model_name"}, root, origins)
    mlflow_used = _uses_mlflow(mlflow_values, root)
    if "tracking_uri" not in mlflow_values:
        uri, origin = _default_tracking_uri(root, used=mlflow_used)
        mlflow_values["tracking_uri"] = uri
        origins["mlflow.tracking_uri"] = origin
    for key, default in (("experiment", "mlci"), ("model_name", root.name)):
        if key not in mlflow_values:
            mlflow_values[key] = default
            origins[f"mlflow.{key}"] = Origin("default", "built-in" if key == "experiment" else "project folder name")
    git_values = _section(fields, "git", {"remote", "main_branch"}, root, origins)
    for key, default in (("remote", "origin"), ("main_branch", "main")):
        origins.setdefault(f"git.{key}", Origin("default", "built-in"))
        git_values.setdefault(key, default)
    ci = _ci(fields, root, origins)

    gates = load_gate_spec(gates_path) if (with_gates and gates_path is not None) else None
    python = _python(fields, root, origins)
    runner, idle = _runner(fields, root, origins)
    return Config(
        root=root,
        tiers=tiers,
        gates_path=gates_path,
        gates=gates,
        mlflow=MlflowConfig(**mlflow_values, used=mlflow_used),
        git=GitConfig(**git_values),
        ci=ci,
        source=source.path if source is not None else None,
        origins=origins,
        python=python,
        runner=runner,
        runner_idle_timeout=idle,
    )


def ensure_tier(config: Config, tier: Tier) -> TierConfig:
    """The tier's config, or a ConfigError naming why this project has no such tier."""
    found = config.tier(tier)
    if found is None:
        where = config.source or config.root
        raise ConfigError(where, None, f"this project has no {tier.value} tier (nothing configured or inferred)")
    return found
