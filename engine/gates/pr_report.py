"""`mlci report`: a Markdown report for a pull request, like CML's, built from mlci's own figures.

It holds the metrics of this branch against the baseline with deltas, the DVC params that
differ from the main branch, the gate table, and PNG plots (the candidate run's training
curves, the confusion matrix on the test split) written beside the Markdown and linked
from it. The gate table and the metric figures come from one `GateRun`, the same objects
`mlci gates --json` prints, so their numbers agree; `gates_json` lets the report reuse a
report `mlci gates --json` saved (latency is a measurement and differs between runs).

A project without MLflow hands in its `DvcMetrics` (read by the caller through DVC's API):
the report then shows them against the main branch and draws DVC's line plots, and it is
written even before the project has a gate file (the gates section says how to get one).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.engine.config.dvc_repo import in_dvc_repo, open_dvc_repo
from mlci.engine.config.loader import Config
from mlci.engine.config.metric_names import canonical, flatten_dotted, lookup
from mlci.engine.config.tracking_store import quiet_mlflow, unreachable_reason
from mlci.engine.errors import MlciError
from mlci.engine.events import DvcMetrics, GateReport, GateResult, event_from_json
from mlci.engine.gates.evaluate import GateRun, Progress, gate_report_json, run_gates
from mlci.engine.gates.metrics_source import dvc_rev_data, read_dvc_metrics

__all__ = [
    "ASSETS_DIR",
    "MetricRow",
    "ParamRow",
    "PrReport",
    "build_report",
    "format_interval",
    "format_number",
    "render_markdown",
    "report_json",
    "write_report",
]

ASSETS_DIR = "report_assets"
"""Beside the Markdown file: the PNG plots it links to."""


@dataclass(frozen=True)
class MetricRow:
    name: str
    value: float | None
    source: str
    baseline: float | None
    delta: float | None


@dataclass(frozen=True)
class ParamRow:
    name: str
    branch: str | None
    """None: the param is not on this branch."""
    baseline: str | None
    """None: the param is not on the main branch."""


@dataclass(frozen=True)
class PrReport:
    branch: str
    commit: str
    gates: GateReport
    gate_run: GateRun | None
    """None when the project has no gate file yet (only its DVC metrics are reported)."""
    metrics: tuple[MetricRow, ...]
    params: tuple[ParamRow, ...]
    params_against: str
    """The branch the params were compared with; empty when they were not (see `params_note`)."""
    params_note: str
    run_id: str | None
    """The MLflow run whose training curves are plotted."""
    plots: tuple[tuple[str, Path], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Why a section is missing (no run to plot, no model to predict with)."""
    dvc: DvcMetrics | None = None
    """The project's DVC metrics against the main branch, for a project without MLflow."""


def _git(root: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    return proc.stdout.strip() if proc.returncode == 0 else ""


def _metric_rows(run: GateRun) -> tuple[MetricRow, ...]:
    """The gates' candidate metrics first, then any other top-level number in the metrics files."""
    rows: dict[str, MetricRow] = {}
    base_metrics = run.baseline.metrics if run.baseline is not None else {}

    def baseline_of(name: str) -> float | None:
        if canonical(name) in run.baseline_values:
            return run.baseline_values[canonical(name)].value
        hit = lookup(name, base_metrics)
        return hit[1] if hit is not None else None

    def add(name: str, value: float | None, source: str) -> None:
        base = baseline_of(name)
        delta = value - base if value is not None and base is not None else None
        rows[canonical(name)] = MetricRow(name, value, source, base, delta)

    for key, found in run.candidate.items():
        add(found.name if canonical(found.name) == key else key, found.value, found.source)
    for source, values in read_dvc_metrics(run.target.root).files.items():
        for key, value in values.items():
            if "." not in key and canonical(key) not in rows:
                add(key, value, source)
    return tuple(rows.values())


def _param_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _params(root: Path, rev: str | None) -> dict[str, str]:
    with open_dvc_repo(root) as repo:
        shown = repo.params.show(revs=[rev] if rev else None, on_error="return")
    out: dict[str, str] = {}
    for rev_data in dvc_rev_data(shown, rev):
        for name, file_data in (rev_data.get("data") or {}).items():
            prefix = "" if Path(name).name == "params.yaml" else f"{Path(name).name}:"
            out.update(flatten_dotted(file_data.get("data") or {}, _param_text, prefix))
    return out


def _param_rows(config: Config) -> tuple[tuple[ParamRow, ...], str, str]:
    """(rows that differ, the branch compared with, why nothing was compared)."""
    main = config.git.main_branch
    if not (config.root / "dvc.yaml").is_file():
        return (), "", "No DVC params to compare (no dvc.yaml)."
    if not in_dvc_repo(config.root):
        return (), "", "No DVC params to compare (not a DVC repository: no .dvc folder)."
    if not _git(config.root, "rev-parse", "--verify", "--quiet", f"refs/heads/{main}"):
        return (), "", f"No branch `{main}` to compare the params with."
    try:
        here, there = _params(config.root, None), _params(config.root, main)
    except Exception as exc:  # a broken params file should not cost the whole report
        return (), "", f"DVC could not read the params: {exc}"
    rows = tuple(
        ParamRow(name, here.get(name), there.get(name))
        for name in sorted(set(here) | set(there))
        if here.get(name) != there.get(name)
    )
    return rows, main, ""


def _curve_run(config: Config, run: GateRun, run_id: str | None) -> tuple[str | None, str]:
    """The MLflow run to plot: given, else the one the model file names, else the newest run with a history."""
    if run_id:
        return run_id, ""
    model_dir = run.target.model_dir
    if model_dir is not None and (model_dir / "MLmodel").is_file():
        import yaml

        meta = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8")) or {}
        if meta.get("run_id"):
            return str(meta["run_id"]), ""
    reason = unreachable_reason(config.mlflow.tracking_uri)
    if reason is not None:
        return None, f"no training curves: MLflow store unreachable ({reason})"
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(config.mlflow.experiment)
    if experiment is None:
        return None, f"no training curves: no MLflow experiment {config.mlflow.experiment!r}"
    for candidate in client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=20
    ):
        if any(len(client.get_metric_history(candidate.info.run_id, k)) > 1 for k in candidate.data.metrics):
            return str(candidate.info.run_id), ""
    return None, f"no training curves: no run in experiment {config.mlflow.experiment!r} logged a metric history"


def _history(config: Config, run_id: str) -> dict[str, list[tuple[int, float]]]:
    quiet_mlflow()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    history: dict[str, list[tuple[int, float]]] = {}
    for key in client.get_run(run_id).data.metrics:
        points = sorted((int(m.step), float(m.value)) for m in client.get_metric_history(run_id, key))
        if len(points) > 1:  # a single value (test_accuracy, train_seconds) is not a curve
            history[key] = points
    return history


def _plots(config: Config, run: GateRun, run_id: str | None, assets: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    from mlci.engine.gates.report_plots import plot_confusion, plot_curves

    plots: list[tuple[str, Path]] = []
    notes: list[str] = []
    if run_id is not None:
        try:
            history = _history(config, run_id)
        except Exception as exc:  # the store went away between two calls
            history = {}
            notes.append(f"no training curves: {exc}")
        if history:
            plots.append(
                (
                    "training curves",
                    plot_curves(history, assets / "training_curves.png", title=f"MLflow run {run_id[:8]}"),
                )
            )
        elif not notes:
            notes.append(f"no training curves: run {run_id} logged no metric history")
    if run.confusion is not None:
        plots.append(
            (
                "confusion matrix",
                plot_confusion(
                    run.confusion.labels,
                    run.confusion.matrix,
                    assets / "confusion_matrix.png",
                    title="confusion matrix (test split)",
                ),
            )
        )
    else:
        notes.append("no confusion matrix: the model could not be evaluated on a test split")
    return plots, notes


def _dvc_metric_rows(dvc: DvcMetrics) -> tuple[MetricRow, ...]:
    return tuple(
        MetricRow(
            m.key, m.value, m.source, m.old, m.value - m.old if m.value is not None and m.old is not None else None
        )
        for m in dvc.values
    )


def _dvc_plots(dvc: DvcMetrics, assets: Path) -> list[tuple[str, Path]]:
    """DVC's line plots against a step (integer x), drawn as the training curves are."""
    from mlci.engine.gates.report_plots import plot_curves

    history = {
        p.y: [(int(x), y) for x, y in zip(p.xs, p.ys, strict=True)]
        for p in dvc.plots
        if len(p.xs) > 1 and all(float(x).is_integer() for x in p.xs)
    }
    if not history:
        return []
    return [("DVC plots", plot_curves(history, assets / "dvc_plots.png", title="DVC plots (dvc plots show)"))]


def _dvc_only_report(config: Config, output: Path, dvc: DvcMetrics) -> PrReport:
    """The report of a project without a gate file: its DVC metrics against main, its params and DVC plots."""
    params, against, params_note = _param_rows(config)
    return PrReport(
        branch=_git(config.root, "rev-parse", "--abbrev-ref", "HEAD") or "(no branch)",
        commit=_git(config.root, "rev-parse", "--short", "HEAD"),
        gates=GateReport((), baseline=f"DVC metrics on {dvc.diff_against}" if dvc.diff_against else ""),
        gate_run=None,
        metrics=_dvc_metric_rows(dvc),
        params=params,
        params_against=against,
        params_note=params_note,
        run_id=None,
        plots=tuple(_dvc_plots(dvc, output.parent / ASSETS_DIR)),
        notes=("no gate file: `mlci gates init` writes a model_gates.yaml from these metrics",),
        dvc=dvc,
    )


def build_report(
    config: Config,
    output: Path,
    *,
    model_path: Path | None = None,
    run_id: str | None = None,
    gates_json: Path | None = None,
    emit_progress: Progress | None = None,
    dvc: DvcMetrics | None = None,
) -> PrReport:
    """Evaluate (or load) the gates, gather metrics, params and plots; plots are written beside `output`.

    `dvc`: the project's DVC metrics, for a project without MLflow; with no gate file, they are the report.
    """
    if dvc is not None and config.gates is None and gates_json is None:
        return _dvc_only_report(config, output, dvc)
    saved: GateReport | None = None
    families = None
    if gates_json is not None:
        loaded = event_from_json(json.loads(gates_json.read_text(encoding="utf-8")))
        if not isinstance(loaded, GateReport):
            raise MlciError(f"{gates_json} is not a gate report (make one with `mlci gates --json`)")
        saved = loaded
        families = frozenset({"performance", "regression"})  # the metric figures; the gate table is the saved one
    run = run_gates(config, model_path=model_path, emit_progress=emit_progress, with_confusion=True, families=families)
    if dvc is not None and not config.mlflow.used and run_id is None:
        # No MLflow store to look for curves in: DVC's plots are the curves.
        plot_run, note = None, ""
        plots, notes = _plots(config, run, None, output.parent / ASSETS_DIR)
        plots = _dvc_plots(dvc, output.parent / ASSETS_DIR) + plots
    else:
        plot_run, note = _curve_run(config, run, run_id)
        plots, notes = _plots(config, run, plot_run, output.parent / ASSETS_DIR)
    params, against, params_note = _param_rows(config)
    return PrReport(
        branch=_git(config.root, "rev-parse", "--abbrev-ref", "HEAD") or "(no branch)",
        commit=_git(config.root, "rev-parse", "--short", "HEAD"),
        gates=saved or run.report,
        gate_run=run,
        metrics=_metric_rows(run),
        params=params,
        params_against=against,
        params_note=params_note,
        run_id=plot_run,
        plots=tuple(plots),
        notes=tuple(([note] if note else []) + notes),
        dvc=dvc,
    )


def format_number(value: float | None) -> str:
    """A figure as the report prints it: 4 decimals, counts as integers, "—" for none."""
    if value is None:
        return "—"
    if value.is_integer() and abs(value) >= 2:
        return str(int(value))  # a count (rows, epochs), not a rate
    return f"{value:.4f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_interval(low: float | None, high: float | None) -> str:
    """An interval as the report prints it: "[0.9105, 0.9275]", "—" for none."""
    if low is None or high is None:
        return "—"
    return f"[{format_number(low)}, {format_number(high)}]"


def _interval_cell(r: GateResult) -> str:
    if r.interval_low is None:
        return "—"
    cell = format_interval(r.interval_low, r.interval_high)
    return f"{cell} **borderline**" if r.borderline else cell


def _gate_row(r: GateResult) -> str:
    mark = ("✅ ⚠️" if r.borderline else "✅") if r.passed else "❌"
    return (
        f"| {mark} | {r.gate} | {_cell(r.check)} | {format_number(r.value)} | {format_number(r.threshold)} | "
        f"{_interval_cell(r)} | {_cell(r.reason)} |"
    )


def _metric_intervals(gates: GateReport) -> dict[str, tuple[float, float, str]]:
    """Canonical metric name -> (low, high, note) from the performance gates that carry an interval."""
    out: dict[str, tuple[float, float, str]] = {}
    for r in gates.results:
        if r.gate == "performance" and r.metric and r.interval_low is not None and r.interval_high is not None:
            out[canonical(r.metric)] = (r.interval_low, r.interval_high, r.interval_note)
    return out


def render_markdown(report: PrReport, output: Path) -> str:
    """The report as GitHub-flavoured Markdown; plot links are relative to `output`."""
    gates = report.gates
    failed = sum(not r.passed for r in gates.results)
    verdict = (
        f"✅ all {len(gates.results)} gates pass" if gates.passed else f"❌ {failed} of {len(gates.results)} gates fail"
    )
    if report.gate_run is None:
        verdict = "no gates yet (no model_gates.yaml)"
    borderline = sum(r.borderline for r in gates.results)
    coin_flips = f" · ⚠️ **{borderline} borderline**" if borderline else ""
    lines = [
        f"# mlci report: `{report.branch}` @ `{report.commit or 'uncommitted'}`",
        "",
        f"**{verdict}**{coin_flips} · candidate `{gates.model_uri or 'none'}` · baseline: {gates.baseline or 'none'}",
        "",
        "## Metrics",
        "",
        "| metric | this branch | baseline | delta | source | interval |",
        "|---|---:|---:|---:|---|---|",
    ]
    intervals = _metric_intervals(gates)
    for m in report.metrics:
        delta = "—" if m.delta is None else f"{m.delta:+.4f}"
        value, base = format_number(m.value), format_number(m.baseline)
        low, high, _note = intervals.get(canonical(m.name), (None, None, ""))
        interval = format_interval(low, high)
        lines.append(f"| {m.name} | {value} | {base} | {delta} | {_cell(m.source)} | {interval} |")
    against = report.params_against
    lines += ["", f"## Params that differ from `{against}`" if against else "## Params", ""]
    if report.params:
        lines += [f"| param | this branch | {against} |", "|---|---|---|"]
        lines += [
            f"| {p.name} | {_cell(p.branch or '(absent)')} | {_cell(p.baseline or '(absent)')} |" for p in report.params
        ]
    else:
        lines.append(report.params_note or f"No params differ from `{against}`.")
    lines += [
        "",
        "## Gates",
        "",
        "| | gate | check | value | threshold | interval | reason |",
        "|---|---|---|---:|---:|---|---|",
    ]
    lines += [_gate_row(r) for r in sorted(gates.results, key=lambda r: (r.passed, not r.borderline))]
    if report.gate_run is None:
        lines = [*lines[:-2], "No gate file yet: `mlci gates init` writes a `model_gates.yaml` from these metrics."]
    if report.dvc is not None:
        lines += _dvc_section(report.dvc)
    levels = sorted({r.confidence for r in gates.results if r.confidence is not None})
    if levels:
        shown = " or ".join(f"{level:.0%}" for level in levels)
        lines += [
            "",
            f"Intervals: {shown} bootstrap confidence intervals on the test split's rows (regression: the champion's "
            "value plus the interval of the paired difference on the same rows). ⚠️ borderline: the value passes, "
            "but its interval crosses the threshold.",
        ]
    if report.plots:
        lines += ["", "## Plots", ""]
        for title, path in report.plots:
            lines += [f"![{title}]({path.relative_to(output.parent).as_posix()})", ""]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines).rstrip() + "\n"


def _dvc_section(dvc: DvcMetrics) -> list[str]:
    """`dvc metrics diff main` as a Markdown table."""
    against = dvc.diff_against
    lines = ["", f"## DVC metrics against `{against}`" if against else "## DVC metrics", ""]
    if not dvc.values:
        return [*lines, "; ".join(dvc.errors) or "No DVC metrics."]
    lines += [f"| file | metric | this branch | {against or 'main'} | change |", "|---|---|---:|---:|---:|"]
    for m in dvc.values:
        change = "—" if m.value is None or m.old is None else f"{m.value - m.old:+.4f}"
        lines.append(
            f"| {_cell(m.source)} | {_cell(m.key)} | {format_number(m.value)} | {format_number(m.old)} | {change} |"
        )
    return lines


def report_json(report: PrReport, output: Path) -> dict[str, Any]:
    """The report for machines; `gates` is exactly what `mlci gates --json` prints."""
    return {
        "branch": report.branch,
        "commit": report.commit,
        "markdown": str(output),
        "baseline": report.gates.baseline,
        "metrics": [m.__dict__ for m in report.metrics],
        "params": {
            "against": report.params_against,
            "note": report.params_note,
            "differ": [p.__dict__ for p in report.params],
        },
        "gates": gate_report_json(report.gates),
        "mlflow_run_id": report.run_id,
        "plots": {title: str(path) for title, path in report.plots},
        "notes": list(report.notes),
        **({"dvc_metrics": [m.__dict__ for m in report.dvc.values]} if report.dvc is not None else {}),
        **({"dvc_diff_against": report.dvc.diff_against} if report.dvc is not None else {}),
    }


def write_report(report: PrReport, output: Path) -> Path:
    """Write the Markdown next to its plots."""
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_markdown(report, output), encoding="utf-8")
    return output
