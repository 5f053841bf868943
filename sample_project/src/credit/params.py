"""Reading params.yaml, and the quick/full training mode (MLCI_TRAIN_MODE overrides it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

MODES = ("quick", "full")
MODELS = ("torch", "sklearn")
MODE_ENV = "MLCI_TRAIN_MODE"


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def resolve_mode(train: dict[str, Any], environ: dict[str, str] | None = None) -> str:
    """The training mode: $MLCI_TRAIN_MODE when set (and not empty), else train.mode."""
    env = os.environ if environ is None else environ
    mode = (env.get(MODE_ENV) or "").strip().lower() or str(train.get("mode", "quick")).lower()
    if mode not in MODES:
        raise ValueError(f"training mode must be one of {MODES}, got {mode!r} "
                         f"(from ${MODE_ENV} or train.mode in params.yaml)")
    return mode


def train_settings(params: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The train section with the mode's own settings (subset, epochs, ...) merged on top."""
    train = dict(params.get("train") or {})
    mode = resolve_mode(train, environ)
    model = str(train.get("model", "torch")).lower()
    if model not in MODELS:
        raise ValueError(f"train.model must be one of {MODELS}, got {model!r}")
    merged = {k: v for k, v in train.items() if k not in MODES}
    merged.update(train.get(mode) or {})
    merged["mode"] = mode
    merged["model"] = model
    merged.setdefault("subset", None)
    merged.setdefault("epochs", 10)
    return merged
