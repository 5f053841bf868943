"""Deterministic synthetic credit-default data: no download, same seed -> same bytes.

    python -m credit.generate --out data/raw/credit.csv [--rows N] [--seed S] [--drift]
    python -m credit.generate --write-reference data/reference/stats.json

The label depends on the loan-to-income ratio, the debt ratio, late payments and
the length of the credit history, through a logistic link (so there is label
noise). Gender and age group have no direct effect on the label.

``--drift`` produces a batch from a shifted population (lower incomes, higher
debt ratios, bigger loans): the data tier's drift test catches it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from credit import AGE_GROUPS, FEATURE_COLUMNS, LABEL_COLUMN, NUMERIC_COLUMNS
from credit.drift import bin_edges, bin_proportions

DEFAULT_ROWS = 20_000
DEFAULT_SEED = 42
# Column rounding: it keeps the CSV small and its bytes stable.
DECIMALS = {"income": 2, "debt_ratio": 4, "credit_history_years": 1, "loan_amount": 2}


def age_group(age: np.ndarray) -> np.ndarray:
    """Map ages to the age_group labels ("18-30", "31-50", "51+")."""
    age = np.asarray(age)
    return np.where(age <= 30, AGE_GROUPS[0], np.where(age <= 50, AGE_GROUPS[1], AGE_GROUPS[2]))


def default_logit(df: pd.DataFrame) -> np.ndarray:
    """The true log-odds of default: what a perfect model would learn."""
    lti = np.log(df["loan_amount"].to_numpy() / df["income"].to_numpy())
    return (
        -2.4
        + 6.4 * (lti + 1.1)
        + 18.0 * (df["debt_ratio"].to_numpy() - 0.29)
        + 3.0 * (df["num_late_payments"].to_numpy() - 1.0)
        - 0.3 * (df["credit_history_years"].to_numpy() - 8.0)
    )


def generate(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED, drift: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 76, size=rows)
    gender = rng.choice(np.array(["F", "M"]), size=rows)
    income = np.exp(rng.normal(np.log(48_000), 0.45, size=rows))
    debt_ratio = rng.beta(2.0, 5.0, size=rows)
    history = np.minimum(age - 18, rng.gamma(2.5, 4.0, size=rows))
    late = rng.poisson(1.0, size=rows)
    loan = np.exp(rng.normal(np.log(16_000), 0.5, size=rows))
    if drift:
        income = income * 0.7
        debt_ratio = np.clip(debt_ratio + 0.1, 0.0, 1.0)
        loan = loan * 1.1
    df = pd.DataFrame(
        {
            "age": age.astype(np.int64),
            "income": np.round(income, DECIMALS["income"]),
            "debt_ratio": np.round(debt_ratio, DECIMALS["debt_ratio"]),
            "credit_history_years": np.round(history, DECIMALS["credit_history_years"]),
            "num_late_payments": late.astype(np.int64),
            "loan_amount": np.round(loan, DECIMALS["loan_amount"]),
            "gender": gender,
            "age_group": age_group(age),
        }
    )
    p = 1.0 / (1.0 + np.exp(-default_logit(df)))
    df[LABEL_COLUMN] = (rng.random(rows) < p).astype(np.int64)
    return df[FEATURE_COLUMNS + [LABEL_COLUMN]]


def write_csv(df: pd.DataFrame, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    # lineterminator fixed so the bytes do not depend on the platform.
    df.to_csv(out, index=False, lineterminator="\n")


def reference_stats(df: pd.DataFrame) -> dict:
    """Per numeric column: mean, std, min, max and decile bins (edges and the reference's
    share per bin, for the PSI); per categorical column and the label: frequencies."""
    stats: dict = {"rows": int(len(df)), "numeric": {}, "categorical": {}}
    for col in NUMERIC_COLUMNS:
        s = df[col].to_numpy(dtype=np.float64)
        edges = bin_edges(s)
        stats["numeric"][col] = {
            "mean": round(float(s.mean()), 6),
            "std": round(float(s.std(ddof=1)), 6),
            "min": round(float(s.min()), 6),
            "max": round(float(s.max()), 6),
            "bin_edges": [round(e, 6) for e in edges],
            "bin_proportions": [round(float(p), 6) for p in bin_proportions(s, edges)],
        }
    for col in ["gender", "age_group", LABEL_COLUMN]:
        freq = df[col].astype(str).value_counts(normalize=True).sort_index()
        stats["categorical"][col] = {k: round(float(v), 6) for k, v in freq.items()}
    return stats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m credit.generate", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="CSV to write (e.g. data/raw/credit.csv)")
    ap.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--drift", action="store_true", help="generate a drifted batch")
    ap.add_argument(
        "--write-reference",
        type=Path,
        metavar="STATS_JSON",
        help="write the reference statistics of the (undrifted) data to this JSON file",
    )
    args = ap.parse_args(argv)
    if args.out is None and args.write_reference is None:
        ap.error("give --out and/or --write-reference")
    if args.out is not None:
        df = generate(args.rows, args.seed, args.drift)
        write_csv(df, args.out)
        print(f"wrote {len(df)} rows to {args.out} (seed={args.seed}, drift={args.drift}, "
              f"default rate={df[LABEL_COLUMN].mean():.3f})")
    if args.write_reference is not None:
        ref = generate(args.rows, args.seed, drift=False)
        args.write_reference.parent.mkdir(parents=True, exist_ok=True)
        args.write_reference.write_text(json.dumps(reference_stats(ref), indent=2) + "\n")
        print(f"wrote reference statistics to {args.write_reference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
