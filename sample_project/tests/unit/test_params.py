from pathlib import Path

import pytest

from credit.params import load_params, resolve_mode, train_settings

PARAMS = {"train": {"model": "torch", "mode": "quick", "lr": 0.1,
                    "quick": {"subset": 100, "epochs": 2}, "full": {"subset": None, "epochs": 9}}}


def test_mode_from_params():
    assert train_settings(PARAMS, environ={})["epochs"] == 2


def test_env_overrides_mode():
    cfg = train_settings(PARAMS, environ={"MLCI_TRAIN_MODE": "full"})
    assert (cfg["mode"], cfg["epochs"], cfg["subset"]) == ("full", 9, None)
    assert "quick" not in cfg and "full" not in cfg
    assert cfg["lr"] == 0.1


def test_empty_env_falls_back_to_params():
    assert resolve_mode(PARAMS["train"], environ={"MLCI_TRAIN_MODE": ""}) == "quick"


def test_bad_mode_and_model_are_errors():
    with pytest.raises(ValueError):
        resolve_mode({"mode": "medium"}, environ={})
    with pytest.raises(ValueError):
        train_settings({"train": {"model": "xgboost"}}, environ={})


def test_project_params_file_is_valid():
    params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    for mode in ("quick", "full"):
        cfg = train_settings(params, environ={"MLCI_TRAIN_MODE": mode})
        assert cfg["epochs"] > 0
    assert 0 < params["data"]["test_size"] < 1
