"""Evaluate `model_gates.yaml` into a GateReport: each gate's value, threshold, verdict and reason.

Gates fail closed. A metric that is missing or NaN, a model that cannot be loaded, a test
split that is missing or empty: each fails the gates that needed it, with the reason in
words, and never passes one silently.

Where the figures come from:

- performance: the project's DVC metrics files first (what `dvc metrics show` shows),
  then mlci's own evaluation of the candidate model on the DVC-tracked test split; for a
  model named with `--model`, always computed (the files describe the pipeline's model);
- regression: the same candidate figures against the baseline (see `baseline`);
- latency, fairness, behavioral: the candidate model itself (see `model_eval`); fairness
  needs two groups or more, each of `min_group_size` rows, and counts the positive class
  the project names (see `positive_label`), never `label == 1` for labels that are names;
- size: the model artifact on disk, what its links point to included.

Every figure computed on rows (performance, regression, fairness, behavioral) carries a
bootstrap interval (see `intervals`); the regression gate resamples candidate and champion
on the same rows (paired). A figure read from a metrics file has no rows of its own: it
gets the interval of the test split's rows only when the model scores exactly that figure
there, and otherwise says it has none. `confidence` in the gate file makes a gate decide on
its interval; a passing point estimate whose interval crosses the threshold is borderline
(see `interval_verdict`).

The model and the test split are loaded once, and only when a gate needs them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlci.engine.config.gate_file import FairnessGate, GateSpec, LatencyGate, MetricThreshold
from mlci.engine.config.loader import Config
from mlci.engine.config.metric_names import canonical, higher_is_better, lookup
from mlci.engine.errors import MlciError
from mlci.engine.events import GateReport, GateResult, event_to_json
from mlci.engine.gates.baseline import Baseline, find_baseline
from mlci.engine.gates.eval_target import EvalTarget, find_eval_target, infer_label
from mlci.engine.gates.interval_verdict import bracket, judge, with_interval
from mlci.engine.gates.intervals import (
    DEFAULT_CONFIDENCE,
    Bootstrap,
    Interval,
    disparity_samples,
    group_samples,
    interval_of,
    mean_samples,
)
from mlci.engine.gates.metrics_source import RecordedMetrics, read_dvc_metrics
from mlci.engine.gates.model_eval import (
    GroupFigure,
    LatencyFigures,
    LoadedModel,
    ModelUnavailable,
    artifact_size_bytes,
    classification_metrics,
    group_figures,
    load_model,
    load_table,
    measure_latency,
    run_cases,
)
from mlci.engine.gates.positive_label import (
    PositiveUnknown,
    distinct_labels,
    find_positive,
    is_positive,
    orient_scores,
)

__all__ = ["Confusion", "GateRun", "MetricValue", "Progress", "evaluate_gates", "gate_report_json", "run_gates"]

Progress = Callable[[str], None]
"""Receives one line per step ("loading the model", "timing 1000 single-row calls")."""

DEFAULT_REGRESSION_METRICS = ("accuracy", "f1_score", "auc_roc")
"""Compared with the baseline when the gate file sets no performance thresholds."""
MAX_DETAIL_LINES = 50
"""Failing behavioral cases listed in a gate's details; the rest are counted."""
BYTES_PER_MB = 1_000_000
"""size.max_mb is in SI megabytes, the unit `ls -lh --si` and most registries show."""
EXPECTED_COLUMN = "expected"
"""The behavioral CSV's column of expected outputs (else the label column's name)."""


class _Missing(Exception):
    """Something a gate needs is not there; the message is the reason the gate fails with."""


@dataclass(frozen=True)
class MetricValue:
    """A metric's value and where it was found (a metrics file, or "computed on <test split>")."""

    name: str
    value: float
    source: str


@dataclass(frozen=True)
class Confusion:
    """A confusion matrix of the candidate on the test split: rows are true labels, columns predicted."""

    labels: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class GateRun:
    """A gate report with the figures behind it, for `mlci report`."""

    report: GateReport
    target: EvalTarget
    candidate: dict[str, MetricValue] = field(default_factory=dict)
    """Canonical metric name -> the candidate's value, for every metric a gate looked up."""
    baseline: Baseline | None = None
    baseline_values: dict[str, MetricValue] = field(default_factory=dict)
    confusion: Confusion | None = None
    latency: LatencyFigures | None = None


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _same_figure(recorded: float, computed: float) -> bool:
    """`computed` rounds to `recorded` at the precision it was written with (0.9190 is 0.91895 to 0.91905).

    A short figure (0.9) may be exact or rounded hard; past 4 decimals' worth of rounding the
    rows are not taken to be the figure's rows.
    """
    text = repr(recorded)
    decimals = len(text.split(".")[1]) if "." in text and "e" not in text else 12
    return abs(recorded - computed) <= min(0.5 * 10.0 ** -min(decimals, 12), 5e-5) + 1e-12


def _how(interval: Interval) -> str:
    """How an interval was made, for `interval_note`: "95% bootstrap interval, 1000 resamples of 4000 rows"."""
    return f"{interval.confidence:.0%} bootstrap interval, {interval.resamples} resamples of {interval.rows} rows"


class _Evaluation:
    """The candidate's figures, each loaded or computed at most once, failures remembered as reasons."""

    def __init__(self, config: Config, target: EvalTarget, progress: Progress, *, use_recorded: bool = True) -> None:
        self.config = config
        self.target = target
        self.progress = progress
        self.use_recorded = use_recorded
        """False for a model named on the command line: the project's metrics files describe another model."""
        evaluation = config.gates.evaluation if config.gates is not None else None
        self.positive_label = evaluation.positive_label if evaluation is not None else None
        self._cache: dict[str, Any] = {}
        self.looked_up: dict[str, MetricValue] = {}
        self.latency_figures: LatencyFigures | None = None

    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        """make() once; a _Missing it raises is remembered and raised again on every later call."""
        if key not in self._cache:
            try:
                self._cache[key] = make()
            except _Missing as exc:
                self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, _Missing):
            raise value
        return value

    @property
    def recorded(self) -> RecordedMetrics:
        if not self.use_recorded:
            return RecordedMetrics()
        value: RecordedMetrics = self._once("recorded", lambda: read_dvc_metrics(self.config.root))
        return value

    def split_name(self) -> str:
        return self.target.relative(self.target.test_data) if self.target.test_data else "the test split"

    def model(self) -> LoadedModel:
        def make() -> LoadedModel:
            if self.target.model_dir is None:
                raise _Missing(self.target.model_why)
            self.progress(f"loading the model {self.target.relative(self.target.model_dir)}")
            try:
                loaded = load_model(self.target.model_dir)
            except ModelUnavailable as exc:
                raise _Missing(str(exc)) from exc
            for difference in loaded.environment:
                self.progress(f"the model's environment differs: {difference}")
            return loaded

        value: LoadedModel = self._once("model", make)
        return value

    def split(self) -> Any:
        def make() -> Any:
            path = self.target.test_data
            if path is None:
                raise _Missing(self.target.test_why)
            if not path.is_file():
                raise _Missing(f"no test split at {self.target.relative(path)} (is it pulled? `dvc pull`)")
            try:
                frame = load_table(path)
            except Exception as exc:
                raise _Missing(f"unreadable test split {self.split_name()}: {exc}") from exc
            if len(frame) == 0:
                raise _Missing(f"the test split {self.split_name()} is empty")
            return frame

        return self._once("split", make)

    def label(self) -> str:
        def make() -> str:
            frame, model = self.split(), self.model()
            if self.target.label is not None:
                if self.target.label not in frame.columns:
                    raise _Missing(f"no label column {self.target.label!r} in {self.split_name()}")
                return self.target.label
            found = infer_label(list(frame.columns), metadata_label=model.metadata_label, model_inputs=model.inputs)
            if found is None:
                raise _Missing(f"cannot tell the label column of {self.split_name()}: set evaluation.label")
            return found

        value: str = self._once("label", make)
        return value

    def features(self) -> Any:
        return self.model().features(self.split(), self.label())

    def raw_predictions(self) -> tuple[Any, Any, Any | None, str]:
        """(true labels, predicted labels, scores of the model's `score_label` or None, why no scores), as given."""

        def make() -> tuple[Any, Any, Any | None, str]:
            frame, label = self.split(), self.label()
            self.progress(f"predicting {len(frame)} rows of {self.split_name()}")
            try:
                labels, scores, why = self.model().labels_and_scores(self.features())
            except Exception as exc:
                raise _Missing(f"the model could not predict {self.split_name()}: {type(exc).__name__}: {exc}") from exc
            return frame[label].to_numpy(), labels, scores, why

        value: tuple[Any, Any, Any | None, str] = self._once("raw_predictions", make)
        return value

    def positive(self) -> Any:
        """The positive class (see `positive_label`); _Missing says why it cannot be told."""

        def make() -> Any:
            y, labels, _scores, _why = self.raw_predictions()
            try:
                found, _source = find_positive(
                    distinct_labels(y, labels), configured=self.positive_label, model_classes=self.model().classes
                )
            except PositiveUnknown as exc:
                raise _Missing(str(exc)) from exc
            return found

        return self._once("positive", make)

    def binary_predictions(self) -> tuple[Any, Any, Any | None, str]:
        """The predictions as 0/1 against the positive class (one against the rest with more than two classes)."""

        def make() -> tuple[Any, Any, Any | None, str]:
            y, labels, scores, why = self.raw_predictions()
            positive = self.positive()
            two = len(distinct_labels(y, labels)) <= 2
            oriented = orient_scores(scores, score_label=self.model().score_label, positive=positive) if two else None
            return is_positive(y, positive), is_positive(labels, positive), oriented, why

        value: tuple[Any, Any, Any | None, str] = self._once("binary_predictions", make)
        return value

    def binarise(self, labels: Any, scores: Any | None, score_label: Any) -> tuple[Any, Any | None]:
        """Another model's (labels, scores) on the split, as `predictions` gives the candidate's."""
        if not self._binary():
            return labels, scores
        positive = self.positive()
        return is_positive(labels, positive), orient_scores(scores, score_label=score_label, positive=positive)

    def _binary(self) -> bool:
        """Whether the split is a two-class problem whose positive class is known (what `predictions` binarises)."""
        y, labels, _scores, _why = self.raw_predictions()
        if len(distinct_labels(y, labels)) > 2:
            return False
        try:
            self.positive()
        except _Missing:
            if self.positive_label is not None:
                raise  # a configured positive class that is not a label is an error, not a guess
            return False
        return True

    def predictions(self) -> tuple[Any, Any, Any | None, str]:
        """(true labels, predicted labels, scores or None, why no scores): 0/1 against the positive class
        for a two-class split (so precision, recall, F1 and AUC are the positive class's), else as given."""
        return self.binary_predictions() if self._binary() else self.raw_predictions()

    def computed(self) -> tuple[dict[str, float], dict[str, str]]:
        def make() -> tuple[dict[str, float], dict[str, str]]:
            y, labels, scores, why = self.predictions()
            return classification_metrics(y, labels, scores, no_scores_reason=why)

        value: tuple[dict[str, float], dict[str, str]] = self._once("computed", make)
        return value

    def bootstrap(self) -> Bootstrap:
        """The resampling of the test split's rows, drawn once and shared by every gate (what pairs them)."""

        def make() -> Bootstrap:
            return Bootstrap(len(self.split()))

        value: Bootstrap = self._once("bootstrap", make)
        return value

    def samples(self) -> dict[str, Any]:
        """Every metric of the candidate, per resample of the test split."""

        def make() -> dict[str, Any]:
            y, labels, scores, _why = self.predictions()
            self.progress(f"resampling {len(y)} rows {self.bootstrap().resamples} times for the intervals")
            return self.bootstrap().classification(y, labels, scores)

        value: dict[str, Any] = self._once("samples", make)
        return value

    def interval(self, found: MetricValue, confidence: float) -> tuple[Interval | None, str]:
        """The interval of the candidate's `found` on the test split, or None and why there is none.

        A figure read from a metrics file borrows the split's interval only when the model
        scores that same figure there (to the file's precision): then those rows are its rows.
        """
        key = canonical(found.name)
        computed = found.source == f"computed on {self.split_name()}"
        try:
            values, _missing = self.computed()
            samples = self.samples()
        except _Missing as exc:
            return None, f"no rows to resample: {found.name} is read from {found.source} ({exc})"
        if not computed:
            here = values.get(key)
            if here is None or not _same_figure(found.value, here):
                scored = f", and the model scores {_fmt(here)} on {self.split_name()}" if here is not None else ""
                return (
                    None,
                    f"no rows to resample: {found.name} {_fmt(found.value)} is read from {found.source}{scored}",
                )
        per_resample = samples.get(key)
        interval = (
            interval_of(per_resample, confidence, rows=self.bootstrap().rows) if per_resample is not None else None
        )
        if interval is None:
            return None, f"no interval: {found.name} cannot be resampled on {self.split_name()}"
        whose = "" if computed else f" (the model scores {found.source}'s figure there)"
        return interval, f"{_how(interval)} of {self.split_name()}{whose}"

    def metric(self, name: str) -> MetricValue:
        """The candidate's `name`, from the metrics files or computed; _Missing says where it looked."""
        found = self.recorded.find(name)
        if found is not None:
            value = MetricValue(name, found.value, found.source if found.key == name else f"{found.source}:{found.key}")
        else:
            where = self.recorded.describe() if self.recorded.files else "no DVC metrics file"
            try:
                values, missing = self.computed()
            except _Missing as exc:
                raise _Missing(
                    f"missing: no metric {name!r} in {where}, and the model could not be evaluated ({exc})"
                ) from exc
            key = canonical(name)
            if key in values:
                value = MetricValue(name, values[key], f"computed on {self.split_name()}")
            elif key in missing:
                raise _Missing(f"missing: no metric {name!r} in {where}, and it cannot be computed: {missing[key]}")
            else:
                raise _Missing(f"missing: no metric {name!r} in {where} or computed from the model")
        self.looked_up[canonical(name)] = value
        return value


def _nan_result(gate: str, check: str, threshold: float | None, what: str, source: str) -> GateResult:
    return GateResult(gate, check, False, None, threshold, f"{what} is NaN in {source}: not a number, fails closed")


def _performance(ev: _Evaluation, t: MetricThreshold) -> GateResult:
    return replace(_performance_check(ev, t), metric=t.metric)


def _performance_check(ev: _Evaluation, t: MetricThreshold) -> GateResult:
    parts = ([f">= {_fmt(t.min)}"] if t.min is not None else []) + ([f"<= {_fmt(t.max)}"] if t.max is not None else [])
    check = f"{t.metric} " + " and ".join(parts)
    threshold = t.min if t.min is not None else t.max
    try:
        found = ev.metric(t.metric)
    except _Missing as exc:
        return GateResult("performance", check, False, None, threshold, str(exc))
    if math.isnan(found.value):
        return _nan_result("performance", check, threshold, t.metric, found.source)
    v, where = found.value, found.source
    level = t.confidence or DEFAULT_CONFIDENCE
    interval, note = ev.interval(found, level)
    shown = f", {level:.0%} interval {bracket(interval.low, interval.high)}" if interval is not None else ""
    if t.min is not None and v < t.min:
        reason = f"{t.metric} {_fmt(v)} < {_fmt(t.min)}{shown if t.confidence else ''} ({where})"
        return with_interval(GateResult("performance", check, False, v, t.min, reason), interval, note)
    if t.max is not None and v > t.max:
        reason = f"{t.metric} {_fmt(v)} > {_fmt(t.max)}{shown if t.confidence else ''} ({where})"
        return with_interval(GateResult("performance", check, False, v, t.max, reason), interval, note)
    crossed = None
    if interval is not None and t.min is not None and interval.low < t.min:
        crossed = t.min
    elif interval is not None and t.max is not None and interval.high > t.max:
        crossed = t.max
    verdict = judge(
        point_ok=True, crosses=crossed is not None, has_interval=interval is not None, confidence=t.confidence
    )
    met = " and ".join(parts)
    if t.confidence is None:
        reason = f"{t.metric} {_fmt(v)} {met} ({where})"
        if crossed is not None:
            reason += f"; borderline: its{shown.removeprefix(',')} crosses {_fmt(crossed)}"
    elif interval is None:
        reason = f"{t.metric} {_fmt(v)} {met}, but confidence {level:g} needs an interval and there is none ({note})"
    elif crossed is not None:
        reason = f"{t.metric} {_fmt(v)} {met}, but its{shown.removeprefix(',')} crosses {_fmt(crossed)} ({where})"
    else:
        reason = f"{t.metric} {_fmt(v)}{shown}: {met} ({where})"
    result = GateResult("performance", check, verdict.passed, v, crossed if crossed is not None else threshold, reason)
    return with_interval(result, interval, note, borderline=verdict.borderline)


def _champion_predictions(ev: _Evaluation, baseline: Baseline) -> tuple[Any, Any | None, str]:
    """The champion model's (labels, scores or None, why no scores) on the current test split's rows."""

    def make() -> tuple[Any, Any | None, str]:
        import tempfile

        from mlci.engine.gates.registry import download_version

        assert baseline.model is not None
        ev.progress(f"evaluating {baseline.label} on {ev.split_name()}")
        ev.predictions()  # the candidate first: its failure is the one to report
        with tempfile.TemporaryDirectory(prefix="mlci-champion-") as tmp:
            try:
                champion = load_model(download_version(ev.config, *baseline.model, Path(tmp)))
                for difference in champion.environment:
                    ev.progress(f"the {baseline.label} model's environment differs: {difference}")
                labels, scores, why = champion.labels_and_scores(champion.features(ev.split(), ev.label()))
                labels, scores = ev.binarise(labels, scores, champion.score_label)
                found: tuple[Any, Any | None, str] = (labels, scores, why)
            except Exception as exc:
                raise _Missing(f"the {baseline.label} model could not be evaluated: {exc}") from exc
        return found

    value: tuple[Any, Any | None, str] = ev._once("champion_predictions", make)
    return value


def _champion_metrics(ev: _Evaluation, baseline: Baseline) -> tuple[dict[str, float], dict[str, str]]:
    """The champion model evaluated on the current test split, for metrics its run did not record."""

    def make() -> tuple[dict[str, float], dict[str, str]]:
        y = ev.predictions()[0]
        labels, scores, why = _champion_predictions(ev, baseline)
        return classification_metrics(y, labels, scores, no_scores_reason=why)

    value: tuple[dict[str, float], dict[str, str]] = ev._once("champion", make)
    return value


@dataclass(frozen=True)
class _Paired:
    """Candidate and baseline measured on the same rows, and the interval of their difference."""

    candidate: MetricValue
    baseline: MetricValue
    difference: Interval


def _paired(ev: _Evaluation, baseline: Baseline, name: str, confidence: float) -> _Paired | str:
    """Both models on the test split's rows, resampled together; or why they cannot be (a note)."""
    if baseline.model is None:
        return f"no rows to resample: the baseline ({baseline.label}) is recorded figures, not a model"
    key = canonical(name)
    try:
        cand_values, _ = ev.computed()
        base_values, _ = _champion_metrics(ev, baseline)
        cand_samples = ev.samples()

        def champion_samples() -> dict[str, Any]:
            labels, scores, _why = _champion_predictions(ev, baseline)
            return ev.bootstrap().classification(ev.predictions()[0], labels, scores)

        base_samples: dict[str, Any] = ev._once("champion_samples", champion_samples)
    except _Missing as exc:
        return f"no paired interval: {exc}"
    if key not in cand_values or key not in base_values or key not in cand_samples or key not in base_samples:
        return f"no paired interval: {name} is not computed for both models on {ev.split_name()}"
    difference = interval_of(cand_samples[key] - base_samples[key], confidence, rows=ev.bootstrap().rows)
    if difference is None:
        return f"no paired interval: {name} cannot be resampled on {ev.split_name()}"
    split = ev.split_name()
    return _Paired(
        MetricValue(name, cand_values[key], f"computed on {split}"),
        MetricValue(name, base_values[key], f"{baseline.label}, computed on {split}"),
        difference,
    )


def _baseline_value(ev: _Evaluation, baseline: Baseline, name: str) -> MetricValue:
    hit = lookup(name, baseline.metrics)
    if hit is not None:
        return MetricValue(name, hit[1], baseline.label)
    if baseline.model is None:
        raise _Missing(f"missing: the baseline ({baseline.label}) has no metric {name!r}")
    try:
        values, missing = _champion_metrics(ev, baseline)
    except _Missing as exc:
        raise _Missing(f"missing: {baseline.label} recorded no {name!r}, and {exc}") from exc
    key = canonical(name)
    if key not in values:
        raise _Missing(f"missing: {baseline.label} has no {name!r}: {missing.get(key, 'not a metric mlci computes')}")
    return MetricValue(name, values[key], f"{baseline.label}, computed on {ev.split_name()}")


def _regression_one(
    ev: _Evaluation,
    baseline: Baseline,
    name: str,
    allowed: float,
    has_min: bool | None,
    baseline_values: dict[str, MetricValue],
    confidence: float | None = None,
) -> GateResult:
    up = higher_is_better(name, has_min=has_min)
    check = f"{name} {'drop' if up else 'rise'} vs baseline <= {_fmt(allowed)}"
    try:
        cand = ev.metric(name)
        base = _baseline_value(ev, baseline, name)
    except _Missing as exc:
        return GateResult("regression", check, False, None, None, str(exc))
    level = confidence or DEFAULT_CONFIDENCE
    paired = _paired(ev, baseline, name, level)
    if isinstance(paired, _Paired):
        # The interval belongs to these figures only if the rows give them (a recorded figure may not).
        for mine, rows in ((cand, paired.candidate), (base, paired.baseline)):
            if not _same_figure(mine.value, rows.value):
                paired = (
                    f"no paired interval: {name} {_fmt(mine.value)} ({mine.source}) is not what the model "
                    f"scores on {ev.split_name()} ({_fmt(rows.value)})"
                )
                break
    baseline_values[canonical(name)] = base
    if math.isnan(cand.value) or math.isnan(base.value):
        where = cand.source if math.isnan(cand.value) else base.source
        return _nan_result("regression", check, None, name, where)
    worse_by = (base.value - cand.value) if up else (cand.value - base.value)
    floor = base.value - allowed if up else base.value + allowed
    delta = cand.value - base.value
    details: tuple[str, ...] = (
        f"candidate: {_fmt(cand.value)} ({cand.source})",
        f"baseline: {_fmt(base.value)} ({base.source})",
        f"{'higher' if up else 'lower'} is better",
    )
    limit = -allowed if up else allowed
    if isinstance(paired, _Paired):
        lo, hi = paired.difference.low, paired.difference.high
        shown = f"{level:.0%} interval {bracket(lo, hi, signed=True)}"
        note = f"paired: candidate - baseline on the same {paired.difference.rows} rows, {_how(paired.difference)}"
        details += (f"{note}: {delta:+.4f}, {shown}",)
        # A hair of tolerance, as for the point estimate.
        crosses = (-lo > allowed + 1e-12) if up else (hi > allowed + 1e-12)
        same_rows = (
            f"{_fmt(cand.value)} vs {_fmt(base.value)} ({baseline.label}) on the same {paired.difference.rows} rows"
        )
    else:
        note, crosses, shown, same_rows = paired, False, "", ""
        details += (note,)
    # A hair of tolerance: 0.92 - 0.91 is 0.010000000000000009 in binary floating point.
    point_ok = worse_by <= allowed + 1e-12
    verdict = judge(point_ok=point_ok, crosses=crosses, has_interval=bool(shown), confidence=confidence)
    if confidence is not None and not shown:
        reason = f"{name}: confidence {level:g} needs candidate and baseline on the same rows, and {note}"
    elif confidence is not None:
        side = "above" if up else "below"
        how = f"lies {side}" if verdict.passed else f"does not lie {side}"
        reason = f"{name} {same_rows}: {delta:+.4f}, {shown} {how} {limit:+.4f} ({_fmt(allowed)} allowed)"
    elif not point_ok:
        reason = (
            f"{name} {_fmt(cand.value)} is {_fmt(worse_by)} worse than {_fmt(base.value)} ({baseline.label}), "
            f"more than the {_fmt(allowed)} allowed"
        )
    else:
        reason = (
            f"{name} {_fmt(cand.value)} vs {_fmt(base.value)} ({baseline.label}): {delta:+.4f}, within {_fmt(allowed)}"
        )
        if verdict.borderline:
            reason += f"; borderline: the paired {shown} reaches {'below' if up else 'above'} {limit:+.4f}"
    result = GateResult("regression", check, verdict.passed, cand.value, floor, reason, details)
    if not isinstance(paired, _Paired):
        return with_interval(result, None, note)
    low, high = base.value + paired.difference.low, base.value + paired.difference.high
    return with_interval(result, paired.difference, note, low=low, high=high, borderline=verdict.borderline)


def _regression(
    ev: _Evaluation, spec: GateSpec, baseline: Baseline, baseline_values: dict[str, MetricValue]
) -> list[GateResult]:
    assert spec.regression is not None
    allowed = spec.regression.max_degradation
    if not baseline.exists:
        return [
            GateResult("regression", "regression baseline", False, None, allowed, f"no baseline: {baseline.why_none}")
        ]
    metrics: list[tuple[str, bool | None]] = [(t.metric, t.min is not None) for t in spec.performance]
    if not metrics:
        metrics = [(m, None) for m in DEFAULT_REGRESSION_METRICS]
    results = []
    for name, has_min in metrics:
        result = _regression_one(
            ev, baseline, name, allowed, has_min, baseline_values, confidence=spec.regression.confidence
        )
        known = baseline_values.get(canonical(name))
        results.append(
            replace(result, metric=name, baseline=None if known is None or math.isnan(known.value) else known.value)
        )
    return results


def _latency(ev: _Evaluation, gate: LatencyGate) -> list[GateResult]:
    wanted = [(k, getattr(gate, k)) for k in ("p50_ms", "p95_ms", "p99_ms") if getattr(gate, k) is not None]
    try:
        features = ev.features()
        ev.progress("timing single-row predictions")
        figures = measure_latency(ev.model(), features, clear_below_ms=min((v for _, v in wanted), default=None))
    except (_Missing, ModelUnavailable) as exc:
        return [GateResult("latency", f"{k} <= {v:g} ms", False, None, v, str(exc)) for k, v in wanted]
    ev.latency_figures = figures
    how = f"{figures.calls} single-row calls after {figures.warmup} warm-up"
    if figures.clear:
        how += ", the slowest within every limit"
    details = (
        f"p50 {figures.p50_ms:.3f} ms, p95 {figures.p95_ms:.3f} ms, p99 {figures.p99_ms:.3f} ms",
        f"{how}, cycling through {figures.distinct_rows} rows of {ev.split_name()}",
    )
    out = []
    for key, limit in wanted:
        value = figures.get(key)
        ok = value <= limit
        reason = f"{key[:3]} {value:.2f} ms {'<=' if ok else '>'} {limit:g} ms ({how})"
        out.append(GateResult("latency", f"{key} <= {limit:g} ms", ok, value, limit, reason, details))
    return out


def _size(ev: _Evaluation, max_mb: float) -> GateResult:
    check = f"model size <= {max_mb:g} MB"
    model_dir = ev.target.model_dir
    if model_dir is None or not model_dir.exists():
        why = ev.target.model_why if model_dir is None else f"no model at {ev.target.relative(model_dir)}"
        return GateResult("size", check, False, None, max_mb, why)
    try:
        size_mb = artifact_size_bytes(model_dir) / BYTES_PER_MB
    except ModelUnavailable as exc:
        return GateResult("size", check, False, None, max_mb, str(exc))
    ok = size_mb <= max_mb
    reason = f"{ev.target.relative(model_dir)} is {size_mb:.3f} MB {'<=' if ok else '>'} {max_mb:g} MB"
    return GateResult("size", check, ok, size_mb, max_mb, reason)


def _fairness_one(ev: _Evaluation, gate: FairnessGate, attribute: str) -> GateResult:
    check = f"{attribute}: {gate.metric} disparity <= {_fmt(gate.max_disparity)}"
    try:
        frame = ev.split()
        if attribute not in frame.columns:
            raise _Missing(f"missing: no column {attribute!r} in {ev.split_name()}")
        # A metric that counts a positive class needs to know which one it is (never `label == 1`
        # for labels that are names); accuracy compares labels as they are.
        needs_positive = canonical(gate.metric) not in ("accuracy", "balanced_accuracy")
        predictions = ev.binary_predictions() if needs_positive else ev.predictions()
    except _Missing as exc:
        return GateResult("fairness", check, False, None, gate.max_disparity, str(exc))
    y, labels, scores, _why = predictions
    figures = group_figures(frame[attribute].to_numpy(), gate.metric, y, labels, scores)
    details = tuple(f"{attribute}={f.group}: {gate.metric} {_fmt(f.value)} ({f.rows} rows)" for f in figures)
    unfit = _unfit_groups(ev, gate, attribute, figures)
    if unfit:
        return GateResult("fairness", check, False, None, gate.max_disparity, unfit, details)
    undefined = [f for f in figures if math.isnan(f.value)]
    if undefined:
        names = ", ".join(f"{f.group} ({f.rows} rows)" for f in undefined)
        return GateResult(
            "fairness",
            check,
            False,
            None,
            gate.max_disparity,
            f"{gate.metric} is undefined for {attribute} group(s) {names}: fails closed",
            details,
        )
    low = min(figures, key=lambda f: f.value)
    high = max(figures, key=lambda f: f.value)
    disparity = high.value - low.value
    ok = disparity <= gate.max_disparity + 1e-12
    reason = (
        f"{gate.metric} by {attribute} ranges {_fmt(low.value)} ({low.group}) to {_fmt(high.value)} "
        f"({high.group}): disparity {_fmt(disparity)} {'<=' if ok else '>'} {_fmt(gate.max_disparity)}"
    )
    result = GateResult("fairness", check, ok, disparity, gate.max_disparity, reason, details)
    return _fairness_interval(ev, gate, attribute, [f.group for f in figures], result, predictions)


def _unfit_groups(ev: _Evaluation, gate: FairnessGate, attribute: str, figures: list[GroupFigure]) -> str:
    """Why the groups cannot be compared (fewer than two, or one too small to judge); "" when they can."""
    if len(figures) < 2:
        only = f" (only {figures[0].group!r}, {figures[0].rows} rows)" if figures else ""
        return (
            f"{attribute} has {len(figures)} group(s) in {ev.split_name()}{only}: "
            f"a disparity needs at least two groups, fails closed"
        )
    small = [f for f in figures if f.rows < gate.min_group_size]
    if small:
        names = ", ".join(f"{f.group!r} ({f.rows} rows)" for f in small)
        return (
            f"{attribute} group(s) {names} in {ev.split_name()} have fewer rows than min_group_size "
            f"{gate.min_group_size}: too few to judge, fails closed"
        )
    return ""


def _fairness_interval(
    ev: _Evaluation,
    gate: FairnessGate,
    attribute: str,
    groups: list[str],
    result: GateResult,
    predictions: tuple[Any, Any, Any | None, str],
) -> GateResult:
    """`result` with the interval of the disparity (and of each group's metric), the groups resampled together."""
    y, labels, scores, _why = predictions
    boot = ev.bootstrap()
    per_group = group_samples(boot, ev.split()[attribute].to_numpy(), gate.metric, y, labels, scores)
    kept = {g: per_group.get(g) for g in groups}
    # Each group's line gets its own interval at its end.
    shown_by_group: dict[str, str] = {}
    for group, samples in kept.items():
        found = interval_of(samples, DEFAULT_CONFIDENCE, rows=boot.rows) if samples is not None else None
        if found is not None:
            shown_by_group[f"{attribute}={group}:"] = (
                f"{found.confidence:.0%} interval {bracket(found.low, found.high)}"
            )
    details = tuple(
        f"{line}, {shown_by_group[line.split(' ', 1)[0]]}" if line.split(" ", 1)[0] in shown_by_group else line
        for line in result.details
    )
    spread = disparity_samples(kept)
    interval = interval_of(spread, DEFAULT_CONFIDENCE, rows=boot.rows) if spread is not None else None
    if interval is None:
        return with_interval(
            replace(result, details=details), None, "no interval: a group's metric cannot be resampled"
        )
    crosses = interval.high > gate.max_disparity + 1e-12
    verdict = judge(point_ok=result.passed, crosses=crosses, has_interval=True, confidence=None)
    reason = result.reason
    shown = f"{interval.confidence:.0%} interval {bracket(interval.low, interval.high)}"
    if verdict.borderline:
        reason += f"; borderline: its {shown} crosses {_fmt(gate.max_disparity)}"
    note = f"disparity {shown}: {_how(interval)} of {ev.split_name()}, the groups resampled together"
    return with_interval(replace(result, reason=reason, details=details), interval, note, borderline=verdict.borderline)


def _behavioral(ev: _Evaluation, cases_path: str, min_rate: float) -> GateResult:
    check = f"pass rate >= {min_rate:.2f}"
    path = ev.config.root / cases_path
    try:
        if not path.is_file():
            raise _Missing(f"missing: no behavioral cases file {cases_path}")
        cases = load_table(path)
        if len(cases) == 0:
            raise _Missing(f"{cases_path} holds no cases: nothing passed, fails closed")
        label = ev.label()
        expected = EXPECTED_COLUMN if EXPECTED_COLUMN in cases.columns else label
        if expected not in cases.columns:
            raise _Missing(f"{cases_path} has no {EXPECTED_COLUMN!r} (or {label!r}) column of expected outputs")
        results = run_cases(ev.model(), cases, expected, label=label)
    except (_Missing, ModelUnavailable) as exc:
        return GateResult("behavioral", check, False, None, min_rate, str(exc))
    failing = [r for r in results if not r.passed]
    rate = (len(results) - len(failing)) / len(results)
    ok = rate >= min_rate - 1e-12
    details = tuple(r.describe() for r in failing[:MAX_DETAIL_LINES])
    if len(failing) > MAX_DETAIL_LINES:
        details += (f"... and {len(failing) - MAX_DETAIL_LINES} more failing cases",)
    reason = (
        f"{len(results) - len(failing)} of {len(results)} cases pass: rate {rate:.2f} "
        f"{'>=' if ok else '<'} {min_rate:.2f}"
    )
    if failing:
        reason += f"; failing: rows {', '.join(str(r.row) for r in failing[:10])}{'...' if len(failing) > 10 else ''}"
    return _behavioral_interval(
        [r.passed for r in results], GateResult("behavioral", check, ok, rate, min_rate, reason, details)
    )


def _behavioral_interval(passed: list[bool], result: GateResult) -> GateResult:
    """`result` with the interval of its pass rate, the cases resampled (a handful of cases: a wide interval)."""
    boot = Bootstrap(len(passed))
    interval = interval_of(mean_samples(boot.counts, passed), DEFAULT_CONFIDENCE, rows=boot.rows)
    if interval is None:
        return result
    assert result.threshold is not None
    crosses = interval.low < result.threshold - 1e-12
    verdict = judge(point_ok=result.passed, crosses=crosses, has_interval=True, confidence=None)
    reason = result.reason
    if verdict.borderline:
        shown = f"{interval.confidence:.0%} interval {bracket(interval.low, interval.high)}"
        reason += f"; borderline: its {shown} crosses {result.threshold:.2f}"
    note = f"{_how(interval)} (cases)"
    return with_interval(replace(result, reason=reason), interval, note, borderline=verdict.borderline)


def _confusion(ev: _Evaluation) -> Confusion | None:
    try:
        y, labels, _scores, _why = ev.raw_predictions()  # the labels as people name them
    except _Missing:
        return None
    pairs = Counter(zip(y.tolist(), labels.tolist(), strict=True))  # (true class, predicted class) -> rows
    classes = sorted({c for pair in pairs for c in pair}, key=str)
    matrix = tuple(tuple(pairs[(truth, said)] for said in classes) for truth in classes)
    return Confusion(tuple(str(c) for c in classes), matrix)


def run_gates(
    config: Config,
    *,
    model_path: Path | None = None,
    emit_progress: Progress | None = None,
    with_confusion: bool = False,
    families: frozenset[str] | None = None,
) -> GateRun:
    """Evaluate the gates of the config's gate file (only `families`, when given); the report and its figures."""
    spec = config.gates
    if spec is None:
        raise MlciError(
            f"no gate file: {config.root} has no model_gates.yaml (and mlci.yaml names none); "
            "`mlci gates init` writes one from the project's metrics"
        )
    progress = emit_progress or (lambda _line: None)
    target = find_eval_target(config.root, spec.evaluation, model_path=model_path)
    # A model named on the command line is judged on figures computed for it: the project's metrics
    # files describe the model the pipeline built, not this one.
    ev = _Evaluation(config, target, progress, use_recorded=model_path is None)

    def wanted(family: str) -> bool:
        return families is None or family in families

    results: list[GateResult] = [_performance(ev, t) for t in spec.performance if wanted("performance")]
    baseline: Baseline | None = None
    baseline_values: dict[str, MetricValue] = {}
    if spec.regression is not None and wanted("regression"):
        progress("looking up the regression baseline")
        baseline = find_baseline(config)
        results += _regression(ev, spec, baseline, baseline_values)
    if spec.latency is not None and wanted("latency"):
        results += _latency(ev, spec.latency)
    if spec.size is not None and wanted("size"):
        results.append(_size(ev, spec.size.max_mb))
    if spec.fairness is not None and wanted("fairness"):
        results += [_fairness_one(ev, spec.fairness, a) for a in spec.fairness.protected_attributes]
    if spec.behavioral is not None and wanted("behavioral"):
        results.append(_behavioral(ev, spec.behavioral.test_cases, spec.behavioral.min_pass_rate))
    report = GateReport(
        tuple(results),
        model_uri=target.relative(target.model_dir) if target.model_dir else "",
        baseline=baseline.label if baseline is not None else "",
    )
    return GateRun(
        report,
        target,
        dict(ev.looked_up),
        baseline,
        baseline_values,
        _confusion(ev) if with_confusion else None,
        ev.latency_figures,
    )


def evaluate_gates(
    config: Config, *, model_path: Path | None = None, emit_progress: Progress | None = None
) -> GateReport:
    """The gate report of the candidate model (see the module docstring for where each figure comes from)."""
    return run_gates(config, model_path=model_path, emit_progress=emit_progress).report


def gate_report_json(report: GateReport) -> dict[str, Any]:
    """The report as `mlci gates --json` prints it: `event_to_json` plus the overall verdict."""
    data = event_to_json(report)
    data["passed"] = report.passed
    return data
