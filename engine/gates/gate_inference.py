"""What a first gate file can be built from: the project's metrics today, and its model file.

`mlci gates init` reads these and hands them to `config.gate_file_writer`. The metrics are
the DVC metrics of the working tree (`metrics_source`, DVC's own API). The model is the
MLflow model the gates would judge anyway (`eval_target`), else the DVC output that looks
like a model (a file named like one, or anything under a `model`/`models` folder), else a
file in `models/`.
"""

from __future__ import annotations

from pathlib import Path

from mlci.engine.config.dvc_repo import in_dvc_repo, open_dvc_repo
from mlci.engine.config.gate_file_writer import CurrentMetric, ModelFile
from mlci.engine.gates.eval_target import find_eval_target
from mlci.engine.gates.metrics_source import read_dvc_metrics

__all__ = ["MODEL_SUFFIXES", "current_metrics", "find_model_file"]

MODEL_SUFFIXES = frozenset(
    {
        ".pkl",
        ".pickle",
        ".joblib",
        ".skops",
        ".pt",
        ".pth",
        ".ckpt",
        ".onnx",
        ".h5",
        ".keras",
        ".safetensors",
        ".bin",
        ".cbm",
    }
)
"""File suffixes that model files of the usual libraries carry."""


def current_metrics(root: Path) -> tuple[list[CurrentMetric], tuple[str, ...]]:
    """Every numeric metric of the working tree's DVC metrics files, and the files that could not be read."""
    recorded = read_dvc_metrics(root)
    found = [
        CurrentMetric(key, value, source) for source, values in recorded.files.items() for key, value in values.items()
    ]
    return found, recorded.errors


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _dvc_out_paths(root: Path) -> list[tuple[str, Path]]:
    if not ((root / "dvc.yaml").is_file() and in_dvc_repo(root)):
        return []
    try:
        with open_dvc_repo(root) as repo:
            return [(stage.addressing, Path(out.fs_path)) for stage in repo.index.stages for out in stage.outs]
    except Exception:  # not a usable DVC project: the conventional folder is still looked at
        return []


def _looks_like_model(path: Path, root: Path) -> bool:
    parts = {p.lower() for p in path.relative_to(root).parts[:-1]}
    return path.suffix.lower() in MODEL_SUFFIXES or bool(parts & {"model", "models"})


def find_model_file(root: Path) -> ModelFile | None:
    """The project's model, with why it was taken for it; None when nothing looks like one."""
    root = root.resolve()
    target = find_eval_target(root, None)
    if target.model_dir is not None and target.model_dir.exists():
        rel = target.model_dir.relative_to(root).as_posix()
        return ModelFile(rel, _size(target.model_dir), target.model_why, named=False)
    for stage, path in _dvc_out_paths(root):
        if path.exists() and _looks_like_model(path, root):
            rel = path.relative_to(root).as_posix()
            return ModelFile(rel, _size(path), f"an output of DVC stage {stage}")
    models = root / "models"
    if models.is_dir():
        files = sorted(p for p in models.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
        if files:
            rel = files[0].relative_to(root).as_posix()
            return ModelFile(rel, _size(files[0]), "the first model file in models/")
    return None
