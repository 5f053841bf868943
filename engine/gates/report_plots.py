"""PNG plots for `mlci report`: the training curves of the candidate's run and its confusion matrix.

matplotlib's object API with the Agg canvas: no pyplot, no global backend switch, no
display needed, so it runs the same on a laptop and on a headless CI runner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["plot_confusion", "plot_curves"]

_DPI = 110


def _save(figure: object, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=_DPI, bbox_inches="tight")  # type: ignore[attr-defined]
    return path


def plot_curves(history: Mapping[str, Sequence[tuple[int, float]]], path: Path, *, title: str) -> Path:
    """One line per metric against its step; losses on the left, everything else on the right."""
    from matplotlib.figure import Figure

    losses = {k: v for k, v in history.items() if "loss" in k.lower()}
    others = {k: v for k, v in history.items() if k not in losses}
    groups = [(name, group) for name, group in (("loss", losses), ("metrics", others)) if group]
    figure = Figure(figsize=(5.2 * len(groups), 3.6))
    for index, (name, group) in enumerate(groups, start=1):
        axes = figure.add_subplot(1, len(groups), index)
        for key, points in sorted(group.items()):
            steps = [s for s, _ in points]
            values = [v for _, v in points]
            axes.plot(steps, values, marker="o" if len(points) < 30 else None, markersize=3, label=key)
        axes.set_xlabel("step")
        axes.set_title(name)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle(title)
    return _save(figure, path)


def plot_confusion(labels: Sequence[str], matrix: Sequence[Sequence[int]], path: Path, *, title: str) -> Path:
    """The confusion matrix as a heat map with the count in every cell."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.8, 3.4))
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    ticks = range(len(labels))
    axes.set_xticks(list(ticks), labels=list(labels))
    axes.set_yticks(list(ticks), labels=list(labels))
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            axes.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    axes.set_title(title)
    return _save(figure, path)
