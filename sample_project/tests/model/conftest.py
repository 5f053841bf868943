"""Model-tier fixtures: the trained MLflow model (models/model) and the test split."""

import os
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "models/model"
CASES = ROOT / "tests/critical_cases.csv"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


@pytest.fixture(scope="session")
def model():
    if not (MODEL_DIR / "MLmodel").exists():
        pytest.fail("models/model is missing: run `dvc repro` (or `dvc pull`) first", pytrace=False)
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(MODEL_DIR))


@pytest.fixture(scope="session")
def cases() -> pd.DataFrame:
    return pd.read_csv(CASES)


@pytest.fixture(scope="session")
def test_rows() -> pd.DataFrame:
    path = ROOT / "data/prepared/test.csv"
    if not path.exists():
        pytest.fail("data/prepared/test.csv is missing: run `dvc repro` first", pytrace=False)
    return pd.read_csv(path).sample(n=500, random_state=0).reset_index(drop=True)
