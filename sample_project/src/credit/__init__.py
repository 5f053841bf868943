"""credit: a small, deterministic credit-default classifier (the mlci-tui sample project)."""

NUMERIC_COLUMNS = [
    "age",
    "income",
    "debt_ratio",
    "credit_history_years",
    "num_late_payments",
    "loan_amount",
]
CATEGORICAL_COLUMNS = ["gender", "age_group"]
PROTECTED_ATTRIBUTES = ["gender", "age_group"]
FEATURE_COLUMNS = NUMERIC_COLUMNS + CATEGORICAL_COLUMNS
LABEL_COLUMN = "default"

GENDERS = ["F", "M"]
AGE_GROUPS = ["18-30", "31-50", "51+"]
