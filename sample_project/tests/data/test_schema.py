"""Schema, nulls, value ranges and duplicates of the raw data and of both splits."""

import pandas as pd
from pandas.api import types

from credit import AGE_GROUPS, FEATURE_COLUMNS, GENDERS, LABEL_COLUMN, NUMERIC_COLUMNS
from credit.generate import age_group

RANGES = {  # column: (min, max), inclusive
    "age": (18, 100),
    "income": (1_000, 2_000_000),
    "debt_ratio": (0.0, 1.0),
    "credit_history_years": (0.0, 82.0),
    "num_late_payments": (0, 50),
    "loan_amount": (100, 1_000_000),
}


def test_columns(any_split: pd.DataFrame):
    assert list(any_split.columns) == FEATURE_COLUMNS + [LABEL_COLUMN]


def test_types(any_split: pd.DataFrame):
    for col in NUMERIC_COLUMNS:
        assert types.is_numeric_dtype(any_split[col]), col
    for col in ("age", "num_late_payments", LABEL_COLUMN):
        assert types.is_integer_dtype(any_split[col]), col


def test_no_nulls(any_split: pd.DataFrame):
    nulls = any_split.isna().sum()
    assert nulls.sum() == 0, nulls[nulls > 0].to_dict()


def test_value_ranges(any_split: pd.DataFrame):
    for col, (lo, hi) in RANGES.items():
        bad = any_split[~any_split[col].between(lo, hi)]
        assert bad.empty, f"{col}: {len(bad)} rows outside [{lo}, {hi}], e.g. {bad[col].head(3).tolist()}"


def test_categories(any_split: pd.DataFrame):
    assert set(any_split["gender"]) <= set(GENDERS)
    assert set(any_split["age_group"]) <= set(AGE_GROUPS)
    assert set(any_split[LABEL_COLUMN]) == {0, 1}


def test_age_group_matches_age(any_split: pd.DataFrame):
    assert (any_split["age_group"] == age_group(any_split["age"].to_numpy())).all()


def test_credit_history_fits_in_a_life(any_split: pd.DataFrame):
    assert (any_split["credit_history_years"] <= any_split["age"] - 18 + 0.05).all()


def test_no_duplicate_rows(any_split: pd.DataFrame):
    dups = any_split.duplicated().sum()
    assert dups == 0, f"{dups} duplicate rows"


def test_enough_rows(raw: pd.DataFrame):
    assert len(raw) >= 5_000
