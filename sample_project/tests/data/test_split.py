"""The prepared split: sizes, stratification, and no leakage between train and test."""

import pandas as pd

from credit import LABEL_COLUMN


def test_no_row_in_both_splits(train: pd.DataFrame, test: pd.DataFrame):
    leaked = train.merge(test, how="inner")
    assert leaked.empty, f"{len(leaked)} rows are in both train and test"


def test_split_covers_the_raw_data(raw: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame):
    assert len(train) + len(test) == len(raw.drop_duplicates())


def test_test_size_follows_params(train: pd.DataFrame, test: pd.DataFrame, params: dict):
    share = len(test) / (len(train) + len(test))
    assert abs(share - params["data"]["test_size"]) < 0.005


def test_split_is_stratified(train: pd.DataFrame, test: pd.DataFrame):
    assert abs(train[LABEL_COLUMN].mean() - test[LABEL_COLUMN].mean()) < 0.01


def test_every_protected_group_is_in_the_test_split(test: pd.DataFrame):
    for col in ("gender", "age_group"):
        counts = test[col].value_counts()
        assert counts.min() >= 100, counts.to_dict()
