"""Behavioural tests of the trained model: critical cases, invariance, direction, output contract."""

import numpy as np
import pandas as pd
import pytest

from credit import FEATURE_COLUMNS

CASES = pd.read_csv(__import__("pathlib").Path(__file__).resolve().parents[1] / "critical_cases.csv")


def proba(model, df: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict(df[FEATURE_COLUMNS], params={"output": "proba"}), dtype=float)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"case{i}" for i in range(len(CASES))])
def test_critical_case(model, i: int):
    case = CASES.iloc[[i]]
    got = int(np.asarray(model.predict(case[FEATURE_COLUMNS]))[0])
    assert got == int(case["expected"].iloc[0]), case.drop(columns="expected").to_dict("records")[0]


def test_output_contract(model, test_rows: pd.DataFrame):
    labels = np.asarray(model.predict(test_rows[FEATURE_COLUMNS]))
    p = proba(model, test_rows)
    assert labels.shape == p.shape == (len(test_rows),)
    assert set(np.unique(labels)) <= {0, 1}
    assert ((p >= 0) & (p <= 1)).all()
    assert np.array_equal(labels, (p >= 0.5).astype(int))


def test_extra_columns_are_ignored(model, test_rows: pd.DataFrame):
    with_label = np.asarray(model.unwrap_python_model().predict_proba(test_rows))
    assert np.allclose(with_label, proba(model, test_rows))


def test_gender_invariance(model, test_rows: pd.DataFrame):
    """Swapping gender barely moves the predicted probability."""
    flipped = test_rows.assign(gender=test_rows["gender"].map({"F": "M", "M": "F"}))
    diff = np.abs(proba(model, test_rows) - proba(model, flipped))
    assert diff.mean() < 0.02 and diff.max() < 0.15, f"mean {diff.mean():.3f}, max {diff.max():.3f}"


def test_more_late_payments_raise_the_risk(model, test_rows: pd.DataFrame):
    worse = test_rows.assign(num_late_payments=test_rows["num_late_payments"] + 2)
    assert (proba(model, worse) >= proba(model, test_rows) - 1e-6).mean() > 0.95


def test_higher_income_lowers_the_risk(model, test_rows: pd.DataFrame):
    richer = test_rows.assign(income=test_rows["income"] * 2)
    assert (proba(model, richer) <= proba(model, test_rows) + 1e-6).mean() > 0.95
