"""Is the MLflow tracking store there? Asked quickly, before MLflow's own client is used.

MLflow's REST client retries an unreachable server with exponential backoff for minutes,
and its sqlite store silently creates a database file that does not exist. Neither is
what a dashboard wants: it wants to say "unreachable" within a second or two and carry on.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlparse

__all__ = ["CONNECT_TIMEOUT_S", "QUIET_MLFLOW_ENV", "quiet_mlflow", "sqlite_path", "unreachable_reason"]

CONNECT_TIMEOUT_S = 2.0
"""How long a TCP connect to a tracking server may take before it counts as unreachable."""

QUIET_MLFLOW_ENV: Mapping[str, str] = MappingProxyType(
    {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
)
"""No usage telemetry, no progress bars: set in mlci's own process before it uses MLflow, and the defaults of
every command it starts (`tool_env`). Both with the same values, so that a command's environment is the same
before and after mlci first used MLflow: a warm server compares it, and restarted after every first
registration or followed run when the two differed."""


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI, None for any other kind of store."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    path = tracking_uri.split(":", 1)[1]
    # sqlite:///relative.db and sqlite:////absolute.db (SQLAlchemy's spelling): three slashes, then the path.
    if path.startswith("///"):
        path = path[3:]
    return Path(path) if path and path != ":memory:" else None


def unreachable_reason(tracking_uri: str) -> str | None:
    """None when the store can be used; otherwise why not, in words."""
    db = sqlite_path(tracking_uri)
    if db is not None:
        return None if db.is_file() else f"no MLflow database at {db}"
    parsed = urlparse(tracking_uri)
    if parsed.scheme in ("http", "https"):
        host = parsed.hostname or "localhost"
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
                return None
        except OSError as exc:
            return f"cannot connect to {host}:{port} ({exc.strerror or exc})"
    if parsed.scheme in ("", "file"):
        local = Path(parsed.path if parsed.scheme == "file" else tracking_uri)
        return None if local.is_dir() else f"no MLflow store at {local}"
    return None


def quiet_mlflow() -> None:
    """Call before MLflow is used: no usage telemetry, no progress bars on a terminal that is not ours."""
    for name, value in QUIET_MLFLOW_ENV.items():
        os.environ.setdefault(name, value)
