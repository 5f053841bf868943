import numpy as np
import pytest
import torch

from credit.model import MLP, binary_auc, fit_sklearn, fit_torch, log_loss


def test_auc_known_values():
    y = np.array([0, 0, 1, 1])
    assert binary_auc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert binary_auc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert binary_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert binary_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.3, 0.35, 0.8])) == 0.75
    assert np.isnan(binary_auc(np.array([1, 1]), np.array([0.2, 0.3])))


def test_log_loss_is_clipped():
    assert log_loss(np.array([1, 0]), np.array([1.0, 0.0])) < 1e-3
    assert np.isfinite(log_loss(np.array([1]), np.array([0.0])))


def test_mlp_output_shape():
    net = MLP(5, [8, 4], dropout=0.0)
    assert net(torch.zeros(3, 5)).shape == (3,)


def _toy(n=400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return x, y


CFG = {"seed": 1, "epochs": 3, "lr": 0.01, "batch_size": 32, "hidden": [8], "dropout": 0.0}


def test_torch_learns_a_separable_problem_and_reports_each_epoch():
    x, y = _toy()
    seen = []
    _, history = fit_torch(x, y, x, y, CFG, on_epoch=lambda e, m: seen.append((e, sorted(m))))
    assert [e for e, _ in seen] == [1, 2, 3]
    assert seen[0][1] == ["train_loss", "val_accuracy", "val_auc", "val_loss"]
    assert history[-1].val_accuracy > 0.9
    assert history[-1].train_loss < history[0].train_loss


def test_torch_training_is_deterministic():
    x, y = _toy()
    a, _ = fit_torch(x, y, x, y, CFG)
    b, _ = fit_torch(x, y, x, y, CFG)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


def test_sklearn_baseline_learns():
    x, y = _toy()
    _, history = fit_sklearn(x, y, x, y, {"seed": 1, "epochs": 2})
    assert history[-1].val_auc > 0.95


@pytest.mark.parametrize("hidden", [[], [16, 8, 4]])
def test_mlp_depths(hidden):
    assert MLP(3, hidden)(torch.ones(2, 3)).shape == (2,)
