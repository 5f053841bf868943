"""Where we decide which tiers run for a change, and why.

    code   a changed path matches the tier's trigger patterns
    data   a trigger pattern, or a DVC-tracked data file's content, a `.dvc` file or `dvc.lock`
    model  a trigger pattern, or DVC's stage graph: a changed dependency, output or parameter
           of a stage makes that stage and everything downstream of it stale

HEAD moving (a commit, a checkout, a rebase) runs no tier by itself. The watcher reports every
file whose content the move changed, and those paths plan as any edit does; DVC's status is
asked again, in case the move left a stage stale. A commit of the tree as it is changes no
content, so every verdict stands: rerunning every tier there would redo proven work.

Every trigger keeps the rule that matched and the paths that matched it, so that "why
did this rerun" has an answer. Holding (a red code tier holds data and model, a red
data tier holds model) is decided at run time with `held_by`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePosixPath

from mlci.engine.config.loader import DATA_TRIGGERS, Config
from mlci.engine.config.patterns import PatternSet
from mlci.engine.errors import MlciError
from mlci.engine.events import TIER_ORDER, ChangeDetected, PlanMade, Tier, Trigger, Verdict
from mlci.engine.loop.dvc_graph import StageGraph, changed_params, load_stage_graph, status_stale
from mlci.engine.loop.dvc_outs import is_dvc_metafile

__all__ = ["READ_BY_TESTS", "RED", "Planner", "held_by"]

READ_BY_TESTS = "read by tests"
"""The rule of a code tier that runs because a file its tests read last time changed (DVC data, fixtures)."""

_Hit = Callable[[str, str, str | None], None]
"""(stage, rule, changed path or None): the stage is stale, for that reason."""

RED: frozenset[Verdict] = frozenset({Verdict.FAILED, Verdict.ERROR, Verdict.TIMED_OUT})
"""Verdicts that hold the tiers after them. A cancelled run is superseded, not red."""


def held_by(tier: Tier, verdicts: Mapping[Tier, Verdict]) -> Tier | None:
    """The earliest tier before `tier` whose latest verdict is red, which holds `tier`; else None."""
    for earlier in TIER_ORDER[: TIER_ORDER.index(tier)]:
        if verdicts.get(earlier) in RED:
            return earlier
    return None


class _Triggers:
    """Triggers of one plan, grouped by (tier, rule) in the order they were found."""

    def __init__(self) -> None:
        self._paths: dict[tuple[Tier, str], list[str]] = {}

    def add(self, tier: Tier, rule: str, path: str | None = None) -> None:
        paths = self._paths.setdefault((tier, rule), [])
        if path is not None and path not in paths:
            paths.append(path)

    def has(self, tier: Tier) -> bool:
        return any(t is tier for t, _ in self._paths)

    def build(self) -> tuple[Trigger, ...]:
        order = {tier: i for i, tier in enumerate(TIER_ORDER)}
        keys = sorted(self._paths, key=lambda key: order[key[0]])  # stable: rules keep their order
        return tuple(Trigger(tier, rule, tuple(self._paths[tier, rule])) for tier, rule in keys)


def _invalidates_graph(path: str) -> bool:
    return is_dvc_metafile(path) or PurePosixPath(path).name == ".dvcignore"


class Planner:
    """Turns change sets into plans for the tiers of one project.

    The DVC stage graph is read through DVC's API on first need and cached until a
    DVC file changes or HEAD moves. Safe to call from several threads.

    Attributes:
        dvc_error: why DVC could not read the pipeline the last time it was asked
            (a malformed `dvc.yaml` mid-edit), for the caller to show; None when it could.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = config.root
        self._rules = {tier: PatternSet(tc.triggers) for tier, tc in config.tiers.items()}
        self._data_rules = PatternSet(DATA_TRIGGERS)
        self._lock = threading.RLock()
        self._graph: StageGraph | None = None
        self.dvc_error: str | None = None

    # -- public API -------------------------------------------------------------------------

    def plan(self, change: ChangeDetected, *, plan_id: int) -> PlanMade | None:
        """The plan for a change set, or None when it triggers no tier."""
        with self._lock:
            if change.head_moved or any(_invalidates_graph(p) for p in change.paths):
                self._graph = None
            found = _Triggers()
            for tier in self.config.tiers:
                for path in change.paths:
                    rule = self._rules[tier].matches(path)
                    if rule is not None:
                        found.add(tier, rule, path)
            if Tier.DATA in self.config.tiers:
                self._data_triggers(change.paths, found)
            if Tier.CODE in self.config.tiers and not found.has(Tier.CODE):
                self._read_by_tests(change.paths, found)
            stages: tuple[str, ...] = ()
            if Tier.MODEL in self.config.tiers:
                stages = self._model_triggers(change, found)
            triggers = found.build()
            if not triggers:
                return None
            tiers = tuple(t for t in TIER_ORDER if found.has(t))
            return PlanMade(plan_id=plan_id, tiers=tiers, triggers=triggers, stages=stages, changed=tuple(change.paths))

    def warm(self) -> None:
        """Read, ahead of the first change, what planning one needs: DVC's stage graph (errors wait for a plan)."""
        if Tier.MODEL in self.config.tiers:
            with self._lock:
                self._stage_graph()

    def _read_by_tests(self, paths: Iterable[str], found: _Triggers) -> None:
        """A data file a code-tier test read last time: the code tier reruns (those tests first)."""
        from mlci.engine.run.affected import STATE_DIR
        from mlci.engine.run.file_reads import READS_FILE, readers_of

        store = self.config.root / STATE_DIR / READS_FILE
        if not store.is_file():
            return
        for path in paths:
            if readers_of(store, (path,)):
                found.add(Tier.CODE, READ_BY_TESTS, path)

    def plan_all(self, *, plan_id: int, reason: str = "requested") -> PlanMade:
        """Every configured tier; the model tier's stages are those DVC finds stale."""
        with self._lock:
            tiers = tuple(t for t in TIER_ORDER if t in self.config.tiers)
            stages: tuple[str, ...] = ()
            if Tier.MODEL in self.config.tiers:
                try:
                    stages = self.stale_stages()
                except MlciError as exc:
                    self.dvc_error = str(exc)
                    stages = self._allowed(self._stage_graph().pipeline)
            return PlanMade(
                plan_id=plan_id, tiers=tiers, triggers=tuple(Trigger(t, reason) for t in tiers), stages=stages
            )

    def stale_stages(self) -> tuple[str, ...]:
        """DVC stages stale now (`dvc status`) and everything downstream of them, in pipeline order.

        Raises MlciError when DVC cannot tell (a malformed pipeline, a run holding DVC's lock).
        """
        with self._lock:
            stale = status_stale(self.root)
            return self._allowed(self._stage_graph().downstream(stale))

    # -- the tiers' DVC rules ---------------------------------------------------------------

    def _stage_graph(self) -> StageGraph:
        if self._graph is None:
            try:
                self._graph = load_stage_graph(self.root)
                self.dvc_error = None
            except MlciError as exc:
                self.dvc_error = str(exc)
                return StageGraph()  # not cached: the next change to dvc.yaml may fix it
        return self._graph

    def _allowed(self, stages: Iterable[str]) -> tuple[str, ...]:
        """The stages the model tier may run: `tiers.model.stages` and their upstream, or all."""
        model = self.config.tiers.get(Tier.MODEL)
        stages = tuple(stages)
        if model is None or not model.stages:
            return stages
        allowed = self._stage_graph().upstream_closure(model.stages)
        return tuple(s for s in stages if s in allowed)

    def _data_triggers(self, paths: Iterable[str], found: _Triggers) -> None:
        """DVC-tracked data (outputs of `.dvc` files), `.dvc` files and `dvc.lock` run the data tier."""
        rules = self._rules[Tier.DATA]
        graph: StageGraph | None = None
        for path in paths:
            if rules.matches(path) is not None:
                continue
            builtin = self._data_rules.matches(path)
            if builtin is not None:
                found.add(Tier.DATA, builtin, path)
                continue
            graph = graph or self._stage_graph()
            for stage, _ in graph.producing(path):
                if not stage.is_pipeline:
                    found.add(Tier.DATA, f"DVC-tracked data {stage.dvcfile}", path)

    def _model_triggers(self, change: ChangeDetected, found: _Triggers) -> tuple[str, ...]:
        """Stale stages from DVC's graph: a changed dependency, output or parameter, or dvc status."""
        graph = self._stage_graph()
        allowed = set(self._allowed(graph.pipeline))
        stale: list[str] = []

        def hit(rule_stage: str, rule: str, path: str | None) -> None:
            if rule_stage in allowed:
                found.add(Tier.MODEL, rule, path)
                stale.append(rule_stage)

        params_files = {p.path for s in graph.stages for p in s.params}
        for path in change.paths:
            # A changed `.dvc` file stands for the data it names (`dvc checkout` follows it).
            data_source = next((s for s in graph.stages if s.dvcfile == path and not s.is_pipeline), None)
            for tracked in data_source.outs if data_source else (path,):
                for stage, _ in graph.depending_on(tracked):
                    hit(stage.name, f"dependency of stage {stage.name}", path)
            for stage, _ in graph.producing(path):
                if stage.is_pipeline:
                    hit(stage.name, f"output of stage {stage.name}", path)
            if path in params_files:
                self._param_triggers(graph, path, hit)
        if change.head_moved or any(PurePosixPath(p).name == "dvc.yaml" for p in change.paths):
            try:
                for name in status_stale(self.root):
                    hit(name, "stale in dvc status", None)
            except MlciError as exc:
                self.dvc_error = str(exc)
        return self._allowed(graph.downstream(stale)) if stale else ()

    def _param_triggers(self, graph: StageGraph, path: str, hit: _Hit) -> None:
        users = [s.name for s in graph.stages if any(p.path == path for p in s.params)]
        try:
            changed = changed_params(self.root, users)
        except MlciError as exc:
            self.dvc_error = str(exc)
            changed = {name: (path,) for name in users}  # cannot compare: every user may be stale
        for name, keys in changed.items():
            noun = "param" if len(keys) == 1 else "params"
            hit(name, f"{noun} {', '.join(keys)} of stage {name}", path)
