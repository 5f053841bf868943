"""Import MLflow's client ahead of the model tier, while the tiers before it run.

The model tier creates its MLflow run before its stages start (they log into it), and the
first use of MLflow in an `mlci` process imports its client: in a pre-push check of the sample
project that was 1.1 s of the 1.6-1.8 s between the data tier's verdict and the model tier's
start, with a core idle while the code and data tiers' pytest ran in their subprocesses. A
daemon thread imports it then.

Only the import: the store is not opened before the model tier's turn, so a check that fails
earlier leaves no store behind. A check that ends before the import does not wait for it (a
daemon thread), and an import that fails here fails again, with its message, where the model
tier imports MLflow itself.
"""

from __future__ import annotations

import contextlib
import importlib
import threading

from mlci.engine.config.loader import Config
from mlci.engine.config.tracking_store import quiet_mlflow
from mlci.engine.events import Tier

__all__ = ["import_mlflow_ahead"]

CLIENT_MODULES: tuple[str, ...] = ("mlflow.tracking",)
SQLITE_STORE_MODULES: tuple[str, ...] = ("mlflow.store.tracking.sqlalchemy_store",)
"""What the client imports when it first opens a `sqlite:` store (SQLAlchemy, the store's tables): 0.6 s."""


def import_mlflow_ahead(config: Config) -> None:
    """Start importing MLflow's client on a daemon thread, when the tiers end with a model tier that uses it."""
    if Tier.MODEL not in config.tiers or not config.mlflow.used:
        return
    modules = CLIENT_MODULES
    if config.mlflow.tracking_uri.startswith("sqlite:"):
        modules += SQLITE_STORE_MODULES
    quiet_mlflow()  # before MLflow is imported, on this thread: os.environ is not written from another
    threading.Thread(target=_import, args=(modules,), name="mlci-import-mlflow", daemon=True).start()


def _import(modules: tuple[str, ...]) -> None:
    for name in modules:
        with contextlib.suppress(Exception):  # the model tier imports it again and says what went wrong
            importlib.import_module(name)
