"""Stage `prepare`: data/raw/credit.csv -> a stratified train/test split.

Exact duplicate rows are dropped first, so no row can land in both splits.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from credit import FEATURE_COLUMNS, LABEL_COLUMN
from credit.params import load_params

RAW = Path("data/raw/credit.csv")
OUT_DIR = Path("data/prepared")


def split(df: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = df[FEATURE_COLUMNS + [LABEL_COLUMN]].drop_duplicates().reset_index(drop=True)
    train, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=df[LABEL_COLUMN])
    return train, test


def main() -> int:
    data = load_params().get("data") or {}
    raw = pd.read_csv(RAW)
    train, test = split(raw, float(data.get("test_size", 0.2)), int(data.get("seed", 42)))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    train.to_csv(OUT_DIR / "train.csv", index=False, lineterminator="\n")
    test.to_csv(OUT_DIR / "test.csv", index=False, lineterminator="\n")
    print(f"prepare: {len(raw)} raw rows -> train {len(train)}, test {len(test)} "
          f"(default rate {train[LABEL_COLUMN].mean():.3f} / {test[LABEL_COLUMN].mean():.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
