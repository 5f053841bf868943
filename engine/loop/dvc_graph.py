"""The project's DVC stage graph, read through DVC's own Python API.

The planner asks three questions of it: which stages depend on a path (a dependency
directory covers the files below it), which stages come downstream of those, and
which parameters of a stage differ from what `dvc.lock` recorded. DVC answers all
three with its own semantics; this module only turns its objects into plain values
so that a plan can be made without holding a `Repo` open. DVC is imported lazily:
it costs a second or more, and only the model tier needs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.engine.errors import MlciError

__all__ = ["ParamsDep", "StageGraph", "StageInfo", "changed_params", "load_stage_graph", "status_stale"]


@dataclass(frozen=True)
class ParamsDep:
    """A stage's dependency on keys of a params file (`params.yaml` unless the stage says so)."""

    path: str
    keys: tuple[str, ...]
    """The keys as the stage lists them; empty means the whole file."""


@dataclass(frozen=True)
class StageInfo:
    name: str
    """DVC's address of the stage: `train`, or `sub/dvc.yaml:train` for a nested pipeline."""
    dvcfile: str
    """Where the stage is defined: `dvc.yaml`, or a `.dvc` file for data added with `dvc add`."""
    is_pipeline: bool
    """A stage with a command (False for a `dvc add`ed data source)."""
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    params: tuple[ParamsDep, ...] = ()
    upstream: tuple[str, ...] = ()
    """The stages whose outputs this one depends on."""


@dataclass(frozen=True)
class StageGraph:
    """Every stage of the project in pipeline order (a stage after everything it depends on)."""

    stages: tuple[StageInfo, ...] = ()
    _by_name: Mapping[str, StageInfo] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(cls, stages: Iterable[StageInfo]) -> StageGraph:
        ordered = tuple(stages)
        return cls(ordered, {s.name: s for s in ordered})

    def stage(self, name: str) -> StageInfo | None:
        return self._by_name.get(name)

    @property
    def pipeline(self) -> tuple[str, ...]:
        """The names of the stages that run a command, in pipeline order."""
        return tuple(s.name for s in self.stages if s.is_pipeline)

    def depending_on(self, path: str) -> list[tuple[StageInfo, str]]:
        """(stage, dependency) for every pipeline stage that has `path` as, or below, a dependency."""
        return [(s, dep) for s in self.stages if s.is_pipeline for dep in s.deps if _covers(dep, path)]

    def producing(self, path: str) -> list[tuple[StageInfo, str]]:
        """(stage, output) for every stage that has `path` as, or below, an output."""
        return [(s, out) for s in self.stages for out in s.outs if _covers(out, path)]

    def downstream(self, names: Iterable[str]) -> tuple[str, ...]:
        """These stages and every stage downstream of them, in pipeline order."""
        stale = set(names)
        for stage in self.stages:  # pipeline order: upstream stages are settled first
            if any(u in stale for u in stage.upstream):
                stale.add(stage.name)
        return tuple(s.name for s in self.stages if s.name in stale and s.is_pipeline)

    def upstream_closure(self, names: Iterable[str]) -> set[str]:
        """These stages and everything they depend on."""
        seen: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            stage = self._by_name.get(name)
            if stage is not None:
                todo.extend(stage.upstream)
        return seen


def _covers(tracked: str, path: str) -> bool:
    return path == tracked or path.startswith(tracked + "/")


def _rel(root: Path, fs_path: str) -> str | None:
    rel = os.path.relpath(fs_path, root)
    return None if rel.startswith("..") else rel.replace(os.sep, "/")


def _address(stage: Any) -> str:
    """The stage's address relative to the project root, as `dvc repro` takes it from there.

    (DVC's own `addressing` is relative to the process's working directory.)
    """
    dvcfile = str(stage.path_in_repo).replace(os.sep, "/")
    name = getattr(stage, "name", None)
    if not name:
        return dvcfile
    return name if dvcfile == "dvc.yaml" else f"{dvcfile}:{name}"


def _open_repo(root: Path) -> Any:
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        return Repo(str(root))
    except DvcException as exc:
        raise MlciError(f"DVC cannot read this project: {exc}") from exc


def load_stage_graph(root: Path) -> StageGraph:
    """The stage graph of the DVC project at `root`; empty when it is not one.

    Raises MlciError when DVC cannot read the pipeline (a malformed `dvc.yaml`).
    """
    if not (root / ".dvc").is_dir():
        return StageGraph()
    import networkx as nx
    from dvc.dependency.param import ParamsDependency
    from dvc.exceptions import DvcException

    with _open_repo(root) as repo:
        base = Path(repo.root_dir)
        try:
            graph = repo.index.graph
        except DvcException as exc:
            raise MlciError(f"DVC cannot read the pipeline: {exc}") from exc
        infos = []
        # Edges go from a stage to the stages it depends on (DVC's convention), so a
        # post-order walk yields every stage after its dependencies, as `dvc repro` runs them.
        for stage in nx.dfs_postorder_nodes(graph):
            deps: list[str] = []
            params: list[ParamsDep] = []
            for dep in stage.deps:
                rel = _rel(base, str(dep.fs_path)) if dep.is_in_repo else None
                if rel is None:
                    continue
                if isinstance(dep, ParamsDependency):
                    params.append(ParamsDep(rel, tuple(str(k) for k in dep.params or ())))
                else:
                    deps.append(rel)
            outs = [r for r in (_rel(base, str(o.fs_path)) for o in stage.outs) if r is not None]
            infos.append(
                StageInfo(
                    name=_address(stage),
                    dvcfile=str(stage.path_in_repo).replace(os.sep, "/"),
                    is_pipeline=bool(stage.cmd),
                    deps=tuple(deps),
                    outs=tuple(outs),
                    params=tuple(params),
                    upstream=tuple(sorted(_address(s) for s in graph.successors(stage))),
                )
            )
        return StageGraph.of(infos)


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested params mapping flattened to dotted leaf keys (`train.quick.epochs`)."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_leaves(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out if out or not prefix else {prefix: value}
    return {prefix: value} if prefix else {}


def changed_params(root: Path, stage_names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """For each named stage, the parameters (dotted, leaf level) that differ from `dvc.lock`.

    A stage missing from the result has none changed; one never run (no lock entry)
    lists every parameter it uses.
    """
    wanted = set(stage_names)
    if not wanted:
        return {}
    from dvc.dependency.param import ParamsDependency
    from dvc.exceptions import DvcException

    result: dict[str, tuple[str, ...]] = {}
    with _open_repo(root) as repo:
        for stage in repo.index.stages:
            address = _address(stage)
            if address not in wanted:
                continue
            names: list[str] = []
            for dep in stage.deps:
                if not isinstance(dep, ParamsDependency):
                    continue
                locked = _leaves(dep.hash_info.value if dep.hash_info else None)
                try:
                    current = _leaves(dep.read_params())
                except DvcException as exc:  # the params file is gone or cannot be parsed
                    raise MlciError(f"DVC cannot read {dep.def_path}: {exc}") from exc
                names.extend(k for k in sorted(set(locked) | set(current)) if locked.get(k) != current.get(k))
            if names:
                result[address] = tuple(dict.fromkeys(names))
    return result


def status_stale(root: Path) -> set[str]:
    """The pipeline stages `dvc status` reports as changed (not yet their downstream)."""
    if not (root / ".dvc").is_dir():
        return set()
    from dvc.exceptions import DvcException

    with _open_repo(root) as repo:
        try:
            status = repo.status()
        except DvcException as exc:
            raise MlciError(f"dvc status failed: {exc}") from exc
        # `status` is keyed by DVC's cwd-relative addressing; answer in root-relative names.
        pipeline = {s.addressing: _address(s) for s in repo.index.stages if s.cmd}
    return {pipeline[name] for name in status if name in pipeline}
