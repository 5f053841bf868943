"""Feature preprocessing: raw columns -> a standardised float32 matrix.

The transformer is fitted on the training rows only and travels inside the
MLflow model, so the served model takes the raw columns (gender and age_group
included) and does its own preprocessing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from credit import AGE_GROUPS, GENDERS, NUMERIC_COLUMNS

CATEGORIES = {"gender": GENDERS, "age_group": AGE_GROUPS}
ENGINEERED = [
    "age",
    "log_income",
    "debt_ratio",
    "credit_history_years",
    "num_late_payments",
    "log_loan_amount",
    "log_loan_to_income",
]


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        raise KeyError(f"missing input column {name!r}")
    return df[name].to_numpy(dtype=np.float64, na_value=np.nan)


def engineer(df: pd.DataFrame) -> np.ndarray:
    """The engineered numeric features (columns in ENGINEERED order), unscaled."""
    income = np.maximum(_col(df, "income"), 1.0)
    loan = np.maximum(_col(df, "loan_amount"), 1.0)
    return np.column_stack(
        [
            _col(df, "age"),
            np.log(income),
            _col(df, "debt_ratio"),
            _col(df, "credit_history_years"),
            _col(df, "num_late_payments"),
            np.log(loan),
            np.log(loan / income),
        ]
    )


def one_hot(values: pd.Series | np.ndarray, categories: list[str]) -> np.ndarray:
    """One column per known category; an unknown or missing value is all zeros."""
    arr = np.asarray(values, dtype=object).astype(str)
    return (arr[:, None] == np.asarray(categories, dtype=object)[None, :]).astype(np.float64)


@dataclass
class FeatureTransformer:
    mean: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, df: pd.DataFrame, categorical: list[str] | tuple[str, ...] = ("age_group",)) -> "FeatureTransformer":
        """Fit on the training rows; `categorical` names the one-hot encoded columns."""
        unknown = set(categorical) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"unknown categorical features {sorted(unknown)}; known: {sorted(CATEGORIES)}")
        x = engineer(df)
        mean = np.nanmean(x, axis=0)
        scale = np.nanstd(x, axis=0)
        scale[~np.isfinite(scale) | (scale < 1e-12)] = 1.0
        cats = {c: list(CATEGORIES[c]) for c in CATEGORIES if c in categorical}
        return cls([float(v) for v in mean], [float(v) for v in scale], cats)

    @property
    def feature_names(self) -> list[str]:
        names = list(ENGINEERED)
        for col, cats in self.categories.items():
            names += [f"{col}={c}" for c in cats]
        return names

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        if not self.mean:
            raise RuntimeError("FeatureTransformer is not fitted")
        x = (engineer(df) - np.asarray(self.mean)) / np.asarray(self.scale)
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)  # missing -> the training mean
        parts = [x]
        for col, cats in self.categories.items():
            if col not in df.columns:
                raise KeyError(f"missing input column {col!r}")
            parts.append(one_hot(df[col], cats))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureTransformer":
        return cls(list(d["mean"]), list(d["scale"]), {k: list(v) for k, v in d["categories"].items()})


__all__ = ["ENGINEERED", "NUMERIC_COLUMNS", "FeatureTransformer", "engineer", "one_hot"]
