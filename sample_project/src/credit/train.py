"""Stage `train`: data/prepared/train.csv -> models/model (MLflow pyfunc) + models/train_run.json.

Logs params and per-epoch metrics (train_loss, val_loss, val_accuracy, val_auc,
step = epoch) to MLflow as training goes, then logs the model to the run
(artifact name "model") and saves the same model to models/model.
"""

from __future__ import annotations

from credit.tracking import flatten, log_params_once, quiet_offline_env, start_run, tracking_uri

quiet_offline_env()  # before mlflow is imported

import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

from credit import LABEL_COLUMN  # noqa: E402
from credit.features import FeatureTransformer  # noqa: E402
from credit.params import load_params, train_settings  # noqa: E402

TRAIN_CSV = Path("data/prepared/train.csv")
MODEL_DIR = Path("models/model")
RUN_JSON = Path("models/train_run.json")


def select_rows(df: pd.DataFrame, cfg: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The (stratified) subset of the mode, then the train/val split."""
    seed = int(cfg.get("seed", 42))
    subset = cfg.get("subset")
    if subset is not None and int(subset) < len(df):
        df, _ = train_test_split(df, train_size=int(subset), random_state=seed, stratify=df[LABEL_COLUMN])
    fit, val = train_test_split(df, test_size=float(cfg.get("val_size", 0.15)), random_state=seed,
                                stratify=df[LABEL_COLUMN])
    return fit, val


def main() -> int:
    import mlflow
    import torch

    from credit.model import fit_sklearn, fit_torch
    from credit.serving import pyfunc_kwargs

    torch.set_num_threads(1)  # deterministic, and kind to a small machine
    params = load_params()
    cfg = train_settings(params)
    df = pd.read_csv(TRAIN_CSV)
    fit_df, val_df = select_rows(df, cfg)
    tf = FeatureTransformer.fit(fit_df, categorical=list(cfg.get("categorical_features") or []))
    x, y = tf.transform(fit_df), fit_df[LABEL_COLUMN].to_numpy()
    x_val, y_val = tf.transform(val_df), val_df[LABEL_COLUMN].to_numpy()
    epochs = int(cfg["epochs"])
    print(f"train: model={cfg['model']} mode={cfg['mode']} rows={len(fit_df)} val={len(val_df)} "
          f"epochs={epochs} features={tf.n_features}", flush=True)

    t_start = time.perf_counter()
    with start_run(run_name=f"{cfg['model']}-{cfg['mode']}") as run:
        log_params_once({**flatten({k: v for k, v in cfg.items() if k not in ("quick", "full")}),
                         "train_rows": str(len(fit_df)), "val_rows": str(len(val_df)),
                         **flatten(params.get("data") or {}, "data.")})
        mlflow.set_tags({"credit.model": cfg["model"], "credit.mode": cfg["mode"]})

        def on_epoch(epoch: int, m: dict[str, float]) -> None:
            mlflow.log_metrics(m, step=epoch)
            print(f"epoch {epoch:>3}/{epochs}  " + "  ".join(f"{k}={v:.4f}" for k, v in m.items()), flush=True)

        if cfg["model"] == "torch":
            est, history = fit_torch(x, y, x_val, y_val, cfg, on_epoch)
            arch = {"hidden": [int(h) for h in cfg.get("hidden", [64, 32])], "dropout": float(cfg.get("dropout", 0.1))}
        else:
            est, history = fit_sklearn(x, y, x_val, y_val, cfg, on_epoch)
            arch = None
        train_seconds = time.perf_counter() - t_start
        mlflow.log_metric("train_seconds", train_seconds)

        with tempfile.TemporaryDirectory() as tmp:
            kwargs = pyfunc_kwargs(cfg["model"], tf, est, arch, Path(tmp))
            if MODEL_DIR.exists():
                shutil.rmtree(MODEL_DIR)
            MODEL_DIR.parent.mkdir(parents=True, exist_ok=True)
            mlflow.pyfunc.save_model(str(MODEL_DIR), **kwargs)
            info = mlflow.pyfunc.log_model(name="model", **kwargs)

        record = {
            "mlflow_run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "tracking_uri": tracking_uri(),
            "model": cfg["model"],
            "mode": cfg["mode"],
            "epochs": epochs,
            "train_rows": len(fit_df),
            "model_uri": f"runs:/{run.info.run_id}/model",
            "logged_model_uri": info.model_uri,
            "final": history[-1].as_dict() if history else {},
            "train_seconds": round(train_seconds, 3),
        }
    RUN_JSON.write_text(json.dumps(record, indent=2) + "\n")
    print(f"train: done in {time.perf_counter() - t_start:.1f}s, run {record['mlflow_run_id']}, "
          f"val_accuracy={history[-1].val_accuracy:.4f} val_auc={history[-1].val_auc:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
