"""Which model the gates judge, on which test split, against which label column.

Nothing here needs configuring in a DVC project laid out the usual way:

- the candidate model is the DVC output that is an MLflow model (a directory with an
  `MLmodel` file), else `models/model`;
- the test split is the DVC-tracked file named `test*.csv` / `test*.parquet` (a stage
  output or a `dvc add`-ed file);
- the label is what the model's metadata calls it (`label_column`), else the one test
  column the model does not take as input, else a column named label/target/y/class.

`evaluation: {model, test_data, label}` in model_gates.yaml overrides each of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mlci.engine.config.dvc_repo import in_dvc_repo, open_dvc_repo
from mlci.engine.config.gate_file import EvaluationSpec

__all__ = ["DEFAULT_MODEL_DIR", "EvalTarget", "find_eval_target", "infer_label"]

DEFAULT_MODEL_DIR = "models/model"
"""Where an MLflow model is looked for when DVC names none."""

_TEST_SUFFIXES = (".csv", ".parquet", ".pq", ".tsv")
_LABEL_NAMES = ("label", "target", "y", "class")


@dataclass(frozen=True)
class EvalTarget:
    """The candidate model and the test split, each with the evidence it was chosen on."""

    root: Path
    model_dir: Path | None
    model_why: str
    """Where the model path came from, or why there is none."""
    test_data: Path | None
    test_why: str
    label: str | None
    """Written in the gate file; None means infer it once the model and split are loaded."""

    def relative(self, path: Path) -> str:
        """A path for people: relative to the project when it is inside it."""
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def _dvc_outputs(root: Path) -> list[tuple[str, Path]]:
    """(stage name, absolute path) of every output DVC tracks, in pipeline order."""
    if not in_dvc_repo(root):
        return []
    try:
        with open_dvc_repo(root) as repo:
            return [(stage.addressing, Path(out.fs_path)) for stage in repo.index.stages for out in stage.outs]
    except Exception:  # not a usable DVC project: fall back to the conventional layout
        return []


def _is_test_split(path: Path) -> bool:
    return path.suffix.lower() in _TEST_SUFFIXES and path.name.lower().startswith("test")


def find_eval_target(root: Path, spec: EvaluationSpec | None, *, model_path: Path | None = None) -> EvalTarget:
    """Locate the candidate model and the test split of the project at `root`."""
    spec = spec or EvaluationSpec()
    outputs: list[tuple[str, Path]] | None = None

    def outs() -> list[tuple[str, Path]]:
        nonlocal outputs
        if outputs is None:
            outputs = _dvc_outputs(root)
        return outputs

    if model_path is not None:
        model_dir: Path | None = model_path.resolve()
        model_why = "given on the command line"
    elif spec.model:
        model_dir, model_why = root / spec.model, "evaluation.model in the gate file"
    else:
        found = next(((s, p) for s, p in outs() if (p / "MLmodel").is_file()), None)
        if found is not None:
            model_dir, model_why = found[1], f"the MLflow model output of DVC stage {found[0]}"
        elif (root / DEFAULT_MODEL_DIR / "MLmodel").is_file():
            model_dir, model_why = root / DEFAULT_MODEL_DIR, f"{DEFAULT_MODEL_DIR} (the conventional place)"
        else:
            model_dir = None
            model_why = (
                f"no MLflow model found: no DVC output holds an MLmodel file and there is no "
                f"{DEFAULT_MODEL_DIR}; set evaluation.model in the gate file"
            )

    if spec.test_data:
        test_data: Path | None = root / spec.test_data
        test_why = "evaluation.test_data in the gate file"
    else:
        found = next(((s, p) for s, p in outs() if _is_test_split(p)), None)
        if found is not None:
            test_data, test_why = found[1], f"the test split DVC tracks ({found[0]})"
        else:
            test_data = None
            test_why = (
                "no test split found: no DVC-tracked file is named test*.csv or test*.parquet; "
                "set evaluation.test_data in the gate file"
            )
    return EvalTarget(root, model_dir, model_why, test_data, test_why, spec.label)


def infer_label(
    columns: Sequence[str], *, metadata_label: str | None, model_inputs: Sequence[str] | None
) -> str | None:
    """The label column of a test split, from the model's own metadata first; None when it cannot tell."""
    if metadata_label and metadata_label in columns:
        return metadata_label
    if model_inputs:
        rest = [c for c in columns if c not in set(model_inputs)]
        if len(rest) == 1:
            return rest[0]
    return next((c for c in columns if c.lower() in _LABEL_NAMES), None)
