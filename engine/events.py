"""The engine's event vocabulary: every fact the loop reports, as a frozen dataclass.

This module is the contract between the headless engine and its three consumers
(the Textual app, the plain printer of `mlci watch`, and `--json` output). It is kept
small and free of behaviour on purpose: a consumer should be able to render the whole
stream from these types alone. Nothing here imports anything heavier than the stdlib.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DVCLIVE_RUN_PREFIX",
    "SUPERSEDED",
    "AffectedVerdict",
    "ChangeDetected",
    "CiJob",
    "CiRun",
    "CiStatus",
    "DvcMetric",
    "DvcMetrics",
    "DvcPlot",
    "Event",
    "GateReport",
    "GateResult",
    "GitState",
    "GpuDevice",
    "GpuProcess",
    "GpuSample",
    "LastGateReport",
    "LastVerdict",
    "MetricPoint",
    "Notice",
    "OutputLines",
    "PlanMade",
    "PushCommit",
    "PushPlan",
    "PushProgress",
    "ReferenceRun",
    "ScenarioCaption",
    "TestOutcome",
    "TestResult",
    "Tier",
    "TierFinished",
    "TierStale",
    "TierStarted",
    "Trigger",
    "Verdict",
    "event_from_json",
    "event_to_json",
]


class Tier(enum.StrEnum):
    """The three test tiers, in the order they gate each other."""

    CODE = "code"
    """Unit tests of preprocessing, features and model code: seconds."""
    DATA = "data"
    """Data tests (schema, nulls, ranges, duplicates, leakage, drift): minutes."""
    MODEL = "model"
    """Stale DVC stages in quick mode, then the model gates: minutes to hours."""


TIER_ORDER: tuple[Tier, ...] = (Tier.CODE, Tier.DATA, Tier.MODEL)
"""Tiers in gating order: a red tier holds every tier after it."""


class Verdict(enum.StrEnum):
    """How a tier run ended."""

    PASSED = "passed"
    """Every test passed (and, for the model tier, every stage succeeded)."""
    FAILED = "failed"
    """At least one test or stage failed."""
    ERROR = "error"
    """The run could not be carried out (collection error, missing tool, crash)."""
    CANCELLED = "cancelled"
    """Killed because a newer change superseded it, or the user cancelled it."""
    TIMED_OUT = "timed_out"
    """Killed, with its process group, at the tier's timeout."""
    HELD = "held"
    """Not run because an earlier tier is red."""

    @property
    def is_green(self) -> bool:
        return self is Verdict.PASSED


SUPERSEDED = "superseded: a newer change needs this tier"
"""The reason of a code or data run CANCELLED because a newer change reruns the tier: a verdict is still to come."""


class TestOutcome(enum.StrEnum):
    """A single test's outcome, as pytest reports it."""

    __test__ = False  # not a pytest test class, despite the name

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    ERROR = "error"
    XFAILED = "xfailed"
    XPASSED = "xpassed"


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class Trigger:
    """Why a tier runs: the rule that matched and the paths that matched it."""

    tier: Tier
    rule: str
    """The trigger pattern, DVC dependency or event ("dep of stage train", "HEAD moved")."""
    paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeDetected:
    """A coalesced set of changes in the watched project (one per burst)."""

    paths: tuple[str, ...]
    """Project-relative POSIX paths whose content changed."""
    head_moved: bool = False
    """HEAD changed (commit, checkout, rebase)."""
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class PlanMade:
    """What will run for a change set, and why."""

    plan_id: int
    tiers: tuple[Tier, ...]
    triggers: tuple[Trigger, ...]
    stages: tuple[str, ...] = ()
    """For the model tier: the DVC stages that are stale, in pipeline order."""
    changed: tuple[str, ...] = ()
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class TierStarted:
    run_id: int
    tier: Tier
    plan_id: int
    command: tuple[str, ...] = ()
    full: bool = False
    """Model tier only: full training rather than quick mode."""
    mlflow_run_id: str = ""
    """Model tier only: the MLflow run mlci created for the stages (they log into it); "" otherwise."""
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class TierFinished:
    run_id: int
    tier: Tier
    verdict: Verdict
    duration_s: float
    passed: int = 0
    failed: int = 0
    reason: str = ""
    """In words, for anything that is not a plain pass or fail (timeout, held, crash)."""
    at: float = field(default_factory=_now)
    plan_id: int = 0
    """The plan this run served (a held tier has no TierStarted that would say so); 0 when unknown."""


@dataclass(frozen=True)
class TierStale:
    """The model tier's current run no longer matches the tree; it finishes, then reruns once."""

    tier: Tier
    run_id: int
    changes_since_start: int


@dataclass(frozen=True)
class OutputLines:
    """A batch of output lines from a running tier (batched so consumers never see one per line)."""

    tier: Tier
    run_id: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class TestResult:
    """One test's result, from pytest's own reports (not scraped from the terminal)."""

    __test__ = False

    tier: Tier
    run_id: int
    nodeid: str
    outcome: TestOutcome
    duration_s: float
    longrepr: str = ""
    """The failure text, empty for a pass."""


@dataclass(frozen=True)
class AffectedVerdict:
    """The code tier's first verdict: the tests the change affects ran first, and this is how they did.

    The tier's own verdict (`TierFinished`) follows once the rest has run; when an affected
    test is red, the rest is not run and the tier is red at once.
    """

    run_id: int
    tier: Tier
    passed: int
    failed: int
    duration_s: float
    """From the tier's start to this verdict: what the person waited for."""
    nodeids: tuple[str, ...] = ()
    """The affected tests, in the order they ran."""
    total: int = 0
    """Tests the tier collected, affected or not."""
    why: str = ""
    """When every test counts as affected, why ("first run: no affected-test data yet"); else ""."""
    data_changed: tuple[str, ...] = ()
    """Project files (data, not Python) whose content changed since a test last read them."""
    at: float = field(default_factory=_now)

    @property
    def is_green(self) -> bool:
        return self.failed == 0


@dataclass(frozen=True)
class MetricPoint:
    """One training metric value, followed live from the MLflow run (or from DVCLive's files).

    Points from DVCLive carry the model tier's MLflow run id when there is one (the curves are the
    same run's), else `dvclive:<path>` (DVCLIVE_RUN_PREFIX): the folder they were read from.
    """

    mlflow_run_id: str
    key: str
    step: int
    value: float
    timestamp_ms: int = 0


@dataclass(frozen=True)
class GateResult:
    """One gate check: its value, threshold and verdict, with the reason in words."""

    gate: str
    """The gate family: performance, regression, latency, size, fairness, behavioral."""
    check: str
    """What exactly was checked, e.g. "accuracy >= 0.92" or "p99_ms"."""
    passed: bool
    value: float | None
    threshold: float | None
    reason: str
    details: tuple[str, ...] = ()
    """Extra lines for the details view (failing behavioral cases, per-group figures)."""
    metric: str = ""
    """Performance and regression checks: the metric's name as the gate file spells it."""
    baseline: float | None = None
    """Regression checks: the baseline's value of the metric (`value` is the candidate's)."""
    interval_low: float | None = None
    """The bootstrap confidence interval of `value`, on the scale of `value` and `threshold`; None when the
    figure has no rows to resample (read from a metrics file). Regression: the baseline plus the interval of
    the paired per-row difference (candidate minus baseline on the same rows)."""
    interval_high: float | None = None
    confidence: float | None = None
    """The interval's level (0.95); None without an interval."""
    borderline: bool = False
    """The point estimate passes the threshold but the interval crosses it: a coin-flip, shown as such."""
    interval_note: str = ""
    """How the interval was made ("95% interval, 1000 resamples of 4000 rows") or why there is none."""


@dataclass(frozen=True)
class GateReport:
    results: tuple[GateResult, ...]
    model_uri: str = ""
    baseline: str = ""
    """Where the regression baseline came from ("champion v3", "main metrics", or "")."""
    at: float = field(default_factory=_now)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)


@dataclass(frozen=True)
class LastVerdict:
    """A tier's verdict from an earlier session, read from the history when mlci opens.

    Shown until this session's own verdict for the tier; `stale` once the tree has moved on.
    """

    tier: Tier
    verdict: Verdict
    finished_at: float
    duration_s: float = 0.0
    passed: int = 0
    failed: int = 0
    reason: str = ""
    git_commit: str = ""
    """The commit checked out when it ran; "" when unknown."""
    stale: bool = False
    """The tree is no longer what it judged: another commit, or files changed after the run."""


@dataclass(frozen=True)
class LastGateReport:
    """The last gate report of an earlier session, with the commit whose model it judged."""

    report: GateReport
    git_commit: str = ""
    stale: bool = False
    """The tree is no longer what the judged model was trained from."""


@dataclass(frozen=True)
class ReferenceRun:
    """An MLflow run whose curves are drawn beside the current run's (the champion's training).

    Its `MetricPoint`s follow this event; they never replace the current run's curves.
    """

    mlflow_run_id: str
    label: str


DVCLIVE_RUN_PREFIX = "dvclive:"
"""The run id of MetricPoints read from DVCLive's files in a project without an MLflow run."""


@dataclass(frozen=True)
class DvcMetric:
    """One number of a DVC metrics file, today and on the branch it is compared with."""

    source: str
    """The metrics file, project-relative."""
    key: str
    """Dotted for nested values (`train.loss`)."""
    value: float | None
    """In the working tree; None when the metric is gone from it."""
    old: float | None = None
    """On `DvcMetrics.diff_against`; None when it was not there."""


@dataclass(frozen=True)
class DvcPlot:
    """One line of one of DVC's plots (`dvc plots show`): `y` against `x`, as read from its data file."""

    source: str
    x: str
    y: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]


@dataclass(frozen=True)
class DvcMetrics:
    """What a DVC project already has: its metrics, their change against the main branch, its line plots.

    Shown by the metrics panel and `mlci report` when there is no MLflow run to show.
    """

    values: tuple[DvcMetric, ...]
    diff_against: str
    """The revision the `old` values come from ("main"); "" when there was none to compare with."""
    plots: tuple[DvcPlot, ...] = ()
    errors: tuple[str, ...] = ()
    """What DVC could not read, in words."""
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    used_memory_mib: float | None
    name: str = ""
    ours: bool = False
    """The process belongs to the tier mlci is running (its process group)."""


@dataclass(frozen=True)
class GpuDevice:
    index: int
    name: str
    utilization_pct: float | None
    memory_used_mib: float | None
    memory_total_mib: float | None
    temperature_c: float | None
    power_w: float | None
    power_limit_w: float | None
    processes: tuple[GpuProcess, ...] = ()
    status: str = ""
    """Empty when the device answered; otherwise why its figures are missing ("GPU is lost")."""


@dataclass(frozen=True)
class GpuSample:
    """One NVML sample of every GPU; `status` is set, and `devices` empty, when there is none."""

    devices: tuple[GpuDevice, ...]
    status: str = ""
    """Empty when sampling worked; otherwise one line saying why there is no GPU data."""
    at: float = field(default_factory=_now)


@dataclass(frozen=True)
class GitState:
    branch: str | None
    """None on a detached HEAD."""
    head: str
    """Short SHA of HEAD, empty in a repository with no commit."""
    upstream: str | None = None
    ahead: int = 0
    behind: int = 0
    dirty: tuple[str, ...] = ()
    """Paths with uncommitted changes (staged, unstaged or untracked)."""
    operation: str | None = None
    """A git operation in progress: merge, rebase, cherry-pick, revert, bisect."""

    @property
    def detached(self) -> bool:
        return self.branch is None


@dataclass(frozen=True)
class PushProgress:
    stage: str
    """"check", "push" or "done"."""
    message: str
    percent: float | None = None
    ok: bool | None = None
    """None while in flight; True or False once it is done."""


@dataclass(frozen=True)
class PushCommit:
    """One commit as the push confirmation lists it."""

    sha: str
    """Short SHA."""
    subject: str
    author: str


@dataclass(frozen=True)
class PushPlan:
    """What a push would send, for the confirmation the TUI and the CLI show before anything runs.

    A value, not an event: the session plans it on request (`Session.plan_push`) and the
    person confirms it; the push then sends exactly `head`, and refuses if the branch moved.
    """

    root: Path
    branch: str
    remote: str
    remote_url: str
    """Credentials, if the URL carries any, are replaced by `***`."""
    head: str
    """Full SHA of the branch tip that would be pushed (and checked)."""
    commits: tuple[PushCommit, ...]
    """Newest first (at most 50)."""
    total_commits: int
    new_branch: bool
    """The remote has no branch of this name yet: it is created and becomes the upstream."""
    upstream: str | None
    """The branch's current upstream, if it has one."""
    uncommitted: int
    """Files with uncommitted changes: they are not part of the push (nor of its check)."""

    @property
    def up_to_date(self) -> bool:
        return not self.new_branch and self.total_commits == 0

    @property
    def refspec(self) -> str:
        # The checked SHA itself, not the branch name: a commit made during the check is not sent.
        # Deliberately without a leading "+": a non-fast-forward update is refused, never forced.
        return f"{self.head}:refs/heads/{self.branch}"

    def warnings(self) -> tuple[str, ...]:
        if not self.uncommitted:
            return ()
        noun = "change" if self.uncommitted == 1 else "changes"
        return (f"{self.uncommitted} uncommitted {noun} will not be pushed (only commits are)",)

    def summary(self) -> str:
        """One line: what goes where."""
        target = f"{self.remote}/{self.branch}"
        if self.up_to_date:
            return f"nothing to push: {target} already has {self.head[:8]}"
        noun = "commit" if self.total_commits == 1 else "commits"
        new = " (new branch, upstream will be set)" if self.new_branch else ""
        return f"push {self.total_commits} {noun} of {self.branch} to {target}{new}"


@dataclass(frozen=True)
class CiJob:
    name: str
    status: str
    conclusion: str | None = None
    url: str = ""


@dataclass(frozen=True)
class CiRun:
    provider: str
    run_id: str
    name: str
    status: str
    """queued, in_progress or completed (GitLab statuses are mapped onto these)."""
    conclusion: str | None
    url: str = ""
    jobs: tuple[CiJob, ...] = ()


@dataclass(frozen=True)
class CiStatus:
    sha: str
    runs: tuple[CiRun, ...]
    message: str = ""
    """Why following stopped or has nothing to show (no token, no network)."""


@dataclass(frozen=True)
class ScenarioCaption:
    """The talk that plays itself (`mlci demo --scenario`): the step on screen, and its verdict once given."""

    step: int
    """1-based; 0 before the first step."""
    total: int
    text: str
    answer: str = ""
    """The dashboard's verdict in words ("red: tests/unit/test_features.py::test_x"); "" while it is awaited."""
    ok: bool = True
    """Whether the answer is the one the story expects."""
    paused: bool = False
    finished: bool = False


@dataclass(frozen=True)
class Notice:
    """Something the user should know that is not an error of a run (polling fallback, store down)."""

    level: str
    """"info", "warning" or "error"."""
    text: str
    source: str = ""


Event = (
    ChangeDetected
    | PlanMade
    | TierStarted
    | TierFinished
    | TierStale
    | OutputLines
    | TestResult
    | AffectedVerdict
    | MetricPoint
    | GateReport
    | LastVerdict
    | LastGateReport
    | ReferenceRun
    | DvcMetrics
    | GpuSample
    | GitState
    | PushProgress
    | CiStatus
    | ScenarioCaption
    | Notice
)
"""Every event the engine can emit."""

_EVENT_TYPES: Mapping[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        ChangeDetected,
        PlanMade,
        TierStarted,
        TierFinished,
        TierStale,
        OutputLines,
        TestResult,
        AffectedVerdict,
        MetricPoint,
        GateReport,
        LastVerdict,
        LastGateReport,
        ReferenceRun,
        DvcMetrics,
        GpuSample,
        GitState,
        PushProgress,
        CiStatus,
        ScenarioCaption,
        Notice,
    )
}

_NESTED: Mapping[str, type[Any]] = {
    "triggers": Trigger,
    "results": GateResult,
    "devices": GpuDevice,
    "processes": GpuProcess,
    "runs": CiRun,
    "jobs": CiJob,
    "report": GateReport,
    "values": DvcMetric,
    "plots": DvcPlot,
}


def event_to_json(event: Event) -> dict[str, Any]:
    """A JSON-ready dict of an event, tagged with its type name."""
    payload = dataclasses.asdict(event)
    payload["type"] = type(event).__name__
    return payload


def _rebuild(cls: type[Any], data: Mapping[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        nested = _NESTED.get(f.name)
        if nested is not None and isinstance(value, list):
            value = tuple(_rebuild(nested, item) for item in value)
        elif nested is not None and isinstance(value, dict):
            value = _rebuild(nested, value)
        elif isinstance(value, list):
            value = tuple(value)
        elif f.name == "tier" and value is not None:
            value = Tier(value)
        elif f.name == "verdict":
            value = Verdict(value)
        elif f.name == "outcome":
            value = TestOutcome(value)
        kwargs[f.name] = value
    if cls is PlanMade and "tiers" in kwargs:
        kwargs["tiers"] = tuple(Tier(t) for t in kwargs["tiers"])
    return cls(**kwargs)


def event_from_json(data: Mapping[str, Any]) -> Event:
    """The inverse of `event_to_json`, used by the TUI when it follows a headless engine."""
    cls = _EVENT_TYPES[str(data["type"])]
    event: Event = _rebuild(cls, data)
    return event
