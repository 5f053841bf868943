"""The models: a small torch MLP (default) and a scikit-learn baseline.

Both train epoch by epoch and report each epoch through a callback, so the
training script can log the learning curve while it grows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class EpochMetrics:
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_auc: float
    seconds: float

    def as_dict(self) -> dict[str, float]:
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "val_auc": self.val_auc,
        }


def binary_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney with tied ranks), without importing scikit-learn."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(np.asarray(score, dtype=np.float64), return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts          # 0-based rank of each distinct value's first row
    r = (first + (counts + 1) / 2.0)[inverse]   # 1-based ranks, ties averaged
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(y, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


# ----------------------------------------------------------------------------- torch


class MLP(nn.Module):
    def __init__(self, n_features: int, hidden: list[int] | tuple[int, ...] = (64, 32), dropout: float = 0.1):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.ReLU(), nn.Dropout(float(dropout))]
            width = int(h)
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # logits, shape (n,)
        return self.net(x).squeeze(-1)


def seed_everything(seed: int) -> None:
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def torch_predict_proba(net: MLP, x: np.ndarray) -> np.ndarray:
    net.eval()
    with torch.inference_mode():
        return torch.sigmoid(net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))).numpy()


def fit_torch(
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    cfg: dict[str, Any],
    on_epoch: EpochCallback | None = None,
) -> tuple[MLP, list[EpochMetrics]]:
    """Train the MLP with Adam on BCE; one callback per epoch with the val metrics."""
    seed = int(cfg.get("seed", 42))
    seed_everything(seed)
    net = MLP(x.shape[1], list(cfg.get("hidden", [64, 32])), float(cfg.get("dropout", 0.1)))
    opt = torch.optim.Adam(net.parameters(), lr=float(cfg.get("lr", 1e-3)),
                           weight_decay=float(cfg.get("weight_decay", 0.0)))
    loss_fn = nn.BCEWithLogitsLoss()
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.float32))
    batch = max(1, int(cfg.get("batch_size", 32)))
    rng = np.random.default_rng(seed)
    history: list[EpochMetrics] = []
    for epoch in range(1, int(cfg.get("epochs", 10)) + 1):
        t0 = time.perf_counter()
        net.train()
        perm = torch.from_numpy(rng.permutation(len(xt)))
        total = 0.0
        for start in range(0, len(perm), batch):
            idx = perm[start : start + batch]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        p_val = torch_predict_proba(net, x_val)
        m = EpochMetrics(
            train_loss=total / len(xt),
            val_loss=log_loss(y_val, p_val),
            val_accuracy=float(np.mean((p_val >= 0.5) == (y_val == 1))),
            val_auc=binary_auc(y_val, p_val),
            seconds=time.perf_counter() - t0,
        )
        history.append(m)
        if on_epoch is not None:
            on_epoch(epoch, m.as_dict())
    return net, history


# --------------------------------------------------------------------------- sklearn


def fit_sklearn(
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    cfg: dict[str, Any],
    on_epoch: EpochCallback | None = None,
):
    """Logistic regression by averaged SGD (scikit-learn), one partial_fit pass per epoch."""
    from sklearn.linear_model import SGDClassifier

    seed = int(cfg.get("seed", 42))
    sk = cfg.get("sklearn") or {}
    # average=True (averaged SGD) steadies the otherwise jumpy epoch-to-epoch metrics
    clf = SGDClassifier(loss="log_loss", alpha=float(sk.get("alpha", 1e-4)), learning_rate="optimal",
                        average=True, random_state=seed)
    rng = np.random.default_rng(seed)
    classes = np.array([0, 1])
    history: list[EpochMetrics] = []
    for epoch in range(1, int(cfg.get("epochs", 10)) + 1):
        t0 = time.perf_counter()
        perm = rng.permutation(len(x))
        clf.partial_fit(x[perm], y[perm], classes=classes)
        p_tr = clf.predict_proba(x)[:, 1]
        p_val = clf.predict_proba(x_val)[:, 1]
        m = EpochMetrics(
            train_loss=log_loss(y, p_tr),
            val_loss=log_loss(y_val, p_val),
            val_accuracy=float(np.mean((p_val >= 0.5) == (y_val == 1))),
            val_auc=binary_auc(y_val, p_val),
            seconds=time.perf_counter() - t0,
        )
        history.append(m)
        if on_epoch is not None:
            on_epoch(epoch, m.as_dict())
    return clf, history
