"""Drift of data/raw/credit.csv against data/reference/stats.json (committed in git).

Regenerate the reference with `python -m credit.generate --write-reference data/reference/stats.json`
when a distribution change is intended.
"""

import numpy as np
import pandas as pd
import pytest

from credit import LABEL_COLUMN, NUMERIC_COLUMNS
from credit.drift import bin_proportions, mean_shift, psi

PSI_MAX = 0.1  # < 0.1: no significant shift (the usual rule of thumb)
MEAN_SHIFT_MAX = 0.1  # in reference standard deviations
FREQ_DIFF_MAX = 0.05  # absolute difference of a category's share

pytestmark = pytest.mark.drift


@pytest.mark.parametrize("col", NUMERIC_COLUMNS)
def test_numeric_distribution_is_stable(raw: pd.DataFrame, reference: dict, col: str):
    ref = reference["numeric"][col]
    value = psi(ref["bin_proportions"], bin_proportions(raw[col].to_numpy(), ref["bin_edges"]))
    assert value < PSI_MAX, f"{col}: PSI {value:.3f} >= {PSI_MAX} against the reference"


@pytest.mark.parametrize("col", NUMERIC_COLUMNS)
def test_numeric_mean_is_stable(raw: pd.DataFrame, reference: dict, col: str):
    ref = reference["numeric"][col]
    shift = mean_shift(raw[col].to_numpy(), ref["mean"], ref["std"])
    assert shift < MEAN_SHIFT_MAX, (f"{col}: mean {raw[col].mean():.4g} vs reference {ref['mean']:.4g} "
                                    f"({shift:.2f} std)")


@pytest.mark.parametrize("col", ["gender", "age_group", LABEL_COLUMN])
def test_category_shares_are_stable(raw: pd.DataFrame, reference: dict, col: str):
    ref = reference["categorical"][col]
    share = raw[col].astype(str).value_counts(normalize=True)
    diffs = {k: abs(share.get(k, 0.0) - v) for k, v in ref.items()}
    worst = max(diffs, key=diffs.get)
    assert diffs[worst] < FREQ_DIFF_MAX, f"{col}={worst}: share moved by {diffs[worst]:.3f}"
    assert set(share.index) <= set(ref), f"{col}: new categories {set(share.index) - set(ref)}"


def test_reference_covers_every_numeric_column(reference: dict):
    assert set(reference["numeric"]) == set(NUMERIC_COLUMNS)
    for col, ref in reference["numeric"].items():
        assert np.isclose(sum(ref["bin_proportions"]), 1, atol=1e-3), col
