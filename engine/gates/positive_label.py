"""Which class is the positive one, and the labels turned into 0/1 against it.

Selection rate, false positive rate, precision, recall, F1 and AUC count a *positive* class.
Comparing labels with 1 is right only for 0/1 labels: with labels "approved"/"denied" every
row compares unequal, every group's selection rate is 0, and a fairness gate on it passes
whatever the model does. The positive class therefore comes, in this order, from the gate
file (`evaluation.positive_label`), from 0/1 labels (1), or from the model's own classes
(scikit-learn's `classes_[1]`, the class `predict_proba[:, 1]` scores); otherwise nobody can
tell, and the gates that need it fail with that reason.
"""

from __future__ import annotations

from typing import Any

from mlci.engine.gates.model_eval import same_label

__all__ = ["PositiveUnknown", "distinct_labels", "find_positive", "is_positive", "orient_scores"]

SHOWN_LABELS = 6
"""Labels named in a reason; the rest are counted."""


class PositiveUnknown(Exception):
    """The positive class cannot be told (or the configured one is not a label); the message says why."""


def distinct_labels(*arrays: Any) -> list[Any]:
    """The labels that occur in `arrays` (true and predicted), as plain Python values, sorted as text."""
    import numpy as np

    seen: dict[str, Any] = {}
    for array in arrays:
        for value in np.unique(np.asarray(array)).tolist():
            seen.setdefault(str(value), value)
    return [seen[k] for k in sorted(seen)]


def _named(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:SHOWN_LABELS])
    return shown + (f" and {len(values) - SHOWN_LABELS} more" if len(values) > SHOWN_LABELS else "")


def find_positive(values: list[Any], *, configured: Any | None, model_classes: list[Any] | None) -> tuple[Any, str]:
    """(the positive class, where it came from); raises PositiveUnknown with the reason."""
    if configured is not None:
        if not any(same_label(v, configured) for v in values):
            # YAML reads an unquoted yes/no/on/off as a boolean: say how to write the word.
            hint = "; quote a word YAML reads as true or false ('yes')" if isinstance(configured, bool) else ""
            raise PositiveUnknown(
                f"evaluation.positive_label {configured!r} is not a label of the test split or the model "
                f"(labels: {_named(values)}){hint}"
            )
        return configured, "evaluation.positive_label"
    if values and all(isinstance(v, bool | int | float) and v in (0, 1) for v in values):
        return 1, "0/1 labels"
    if model_classes is not None and len(model_classes) == 2:
        return model_classes[1], "the model's second class"
    raise PositiveUnknown(
        f"cannot tell which label is positive among {_named(values)}: set evaluation.positive_label in the gate file"
    )


def is_positive(values: Any, positive: Any) -> Any:
    """1 where a label is `positive` (1, 1.0, "1" and True are one label), else 0, as int64."""
    import numpy as np

    array = np.asarray(values)
    hits = [v for v in np.unique(array).tolist() if same_label(v, positive)]
    return np.isin(array, np.asarray(hits, dtype=array.dtype) if hits else []).astype(np.int64)


def orient_scores(scores: Any | None, *, score_label: Any, positive: Any) -> Any | None:
    """Scores of `positive`, from scores of `score_label` (the two classes' probabilities sum to 1)."""
    if scores is None or same_label(score_label, positive):
        return scores
    return 1.0 - scores
