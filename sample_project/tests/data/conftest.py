"""Data-tier fixtures: the DVC-tracked raw data, the prepared split and the reference stats."""

import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "data/raw/credit.csv"
PREPARED = ROOT / "data/prepared"
REFERENCE = ROOT / "data/reference/stats.json"


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: `dvc pull` or `dvc repro` first", pytrace=False)
    return pd.read_csv(path)


@pytest.fixture(scope="session")
def raw() -> pd.DataFrame:
    return _read(RAW)


@pytest.fixture(scope="session")
def train() -> pd.DataFrame:
    return _read(PREPARED / "train.csv")


@pytest.fixture(scope="session")
def test() -> pd.DataFrame:
    return _read(PREPARED / "test.csv")


@pytest.fixture(scope="session", params=["raw", "train", "test"])
def any_split(request) -> pd.DataFrame:
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def reference() -> dict:
    return json.loads(REFERENCE.read_text())


@pytest.fixture(scope="session")
def params() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text())
