import numpy as np
import pandas as pd
import pytest

from credit.features import ENGINEERED, FeatureTransformer, engineer, one_hot
from credit.generate import generate


@pytest.fixture(scope="module")
def df():
    return generate(rows=400, seed=11)


def test_transform_is_standardised(df):
    tf = FeatureTransformer.fit(df, categorical=["gender", "age_group"])
    x = tf.transform(df)
    assert x.dtype == np.float32
    assert x.shape == (len(df), len(ENGINEERED) + 5)
    assert np.allclose(x[:, : len(ENGINEERED)].mean(axis=0), 0, atol=1e-5)
    assert np.allclose(x[:, : len(ENGINEERED)].std(axis=0), 1, atol=1e-3)


def test_one_hot_rows_sum_to_one_per_attribute(df):
    x = FeatureTransformer.fit(df, categorical=["gender", "age_group"]).transform(df)
    n = len(ENGINEERED)
    assert np.all(x[:, n : n + 2].sum(axis=1) == 1)  # gender
    assert np.all(x[:, n + 2 :].sum(axis=1) == 1)  # age_group


def test_unknown_category_is_all_zeros():
    assert one_hot(pd.Series(["F", "X", None]), ["F", "M"]).tolist() == [[1, 0], [0, 0], [0, 0]]


def test_without_categorical_features(df):
    tf = FeatureTransformer.fit(df, categorical=[])
    assert tf.transform(df.drop(columns=["gender", "age_group"])).shape == (len(df), len(ENGINEERED))


def test_default_encodes_age_group_only(df):
    assert FeatureTransformer.fit(df).feature_names[-3:] == ["age_group=18-30", "age_group=31-50", "age_group=51+"]
    assert not any(n.startswith("gender") for n in FeatureTransformer.fit(df).feature_names)


def test_unknown_categorical_feature_is_an_error(df):
    with pytest.raises(ValueError, match="income"):
        FeatureTransformer.fit(df, categorical=["income"])


def test_missing_numeric_value_maps_to_the_mean(df):
    tf = FeatureTransformer.fit(df)
    row = df.head(1).copy()
    row["debt_ratio"] = np.nan
    assert tf.transform(row)[0, ENGINEERED.index("debt_ratio")] == 0.0


def test_integer_and_float_inputs_agree(df):
    tf = FeatureTransformer.fit(df)
    a = df.head(5).copy()
    a["income"] = a["income"].round()
    b = a.copy()
    b["income"] = b["income"].astype("int64")
    assert np.array_equal(tf.transform(a), tf.transform(b))


def test_missing_column_is_a_clear_error(df):
    with pytest.raises(KeyError, match="income"):
        FeatureTransformer.fit(df).transform(df.drop(columns=["income"]))


def test_round_trip_through_a_dict(df):
    tf = FeatureTransformer.fit(df, categorical=["gender", "age_group"])
    again = FeatureTransformer.from_dict(tf.to_dict())
    assert np.array_equal(tf.transform(df), again.transform(df))
    assert again.feature_names == tf.feature_names


def test_loan_to_income_is_engineered():
    row = pd.DataFrame({"age": [40], "income": [50_000.0], "debt_ratio": [0.2], "credit_history_years": [5.0],
                        "num_late_payments": [0], "loan_amount": [25_000.0]})
    assert engineer(row)[0, ENGINEERED.index("log_loan_to_income")] == pytest.approx(np.log(0.5))
