import numpy as np
import pandas as pd

from credit import AGE_GROUPS, FEATURE_COLUMNS, LABEL_COLUMN
from credit.generate import age_group, generate, reference_stats, write_csv


def test_same_seed_gives_identical_data():
    pd.testing.assert_frame_equal(generate(rows=300, seed=3), generate(rows=300, seed=3))


def test_another_seed_gives_other_data():
    assert not generate(rows=300, seed=3).equals(generate(rows=300, seed=4))


def test_csv_bytes_are_stable(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_csv(generate(rows=200, seed=1), a)
    write_csv(generate(rows=200, seed=1), b)
    assert a.read_bytes() == b.read_bytes()


def test_columns_and_label():
    df = generate(rows=500, seed=0)
    assert list(df.columns) == FEATURE_COLUMNS + [LABEL_COLUMN]
    assert set(df[LABEL_COLUMN].unique()) == {0, 1}
    assert set(df["gender"].unique()) == {"F", "M"}
    assert set(df["age_group"].unique()) <= set(AGE_GROUPS)


def test_age_group_boundaries():
    assert list(age_group(np.array([18, 30, 31, 50, 51, 75]))) == [
        "18-30", "18-30", "31-50", "31-50", "51+", "51+"]


def test_drift_shifts_income_and_debt():
    base, drifted = generate(rows=2000, seed=5), generate(rows=2000, seed=5, drift=True)
    assert drifted["income"].mean() < 0.8 * base["income"].mean()
    assert drifted["debt_ratio"].mean() > base["debt_ratio"].mean() + 0.05
    assert drifted["debt_ratio"].between(0, 1).all()


def test_reference_stats_shape():
    stats = reference_stats(generate(rows=1000, seed=2))
    inc = stats["numeric"]["income"]
    assert len(inc["bin_proportions"]) == len(inc["bin_edges"]) + 1
    assert abs(sum(inc["bin_proportions"]) - 1) < 1e-4
    assert set(stats["categorical"]["gender"]) == {"F", "M"}
