import pandas as pd

from credit import LABEL_COLUMN
from credit.generate import generate
from credit.prepare import split


def test_split_is_stratified_and_disjoint():
    df = generate(rows=1000, seed=8)
    df = pd.concat([df, df.head(20)])  # duplicates must not leak across the split
    train, test = split(df, test_size=0.2, seed=1)
    assert len(train) + len(test) == 1000
    assert abs(train[LABEL_COLUMN].mean() - test[LABEL_COLUMN].mean()) < 0.01
    assert len(train.merge(test, how="inner")) == 0


def test_split_is_deterministic():
    df = generate(rows=500, seed=8)
    a, b = split(df, 0.2, 3), split(df, 0.2, 3)
    pd.testing.assert_frame_equal(a[1], b[1])
