"""Which Python runs the project's tiers, and why; and how mlci's own code reaches it.

The tiers run in the project's interpreter, so mlci can live in an environment of its own
(`pipx install`, `uv tool install`) and serve any project. The order:

1. `python:` in the config (a path, relative to the project root, or a command on PATH);
2. `.venv/bin/python`, then `venv/bin/python`, at the project root;
3. `$VIRTUAL_ENV/bin/python` (the environment the user activated);
4. mlci's own interpreter.

What mlci needs inside that interpreter (its pytest plugin, the launcher of a cold run and the
warm runner's server) imports only the standard library and pytest. When the interpreter is not mlci's own,
those few modules are copied into a directory of their own (`mlci_path`), which goes first
on `PYTHONPATH`: nothing of mlci has to be installed in the project's environment, and an
older mlci installed there does not shadow them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlci.engine.config.loader import Config

__all__ = ["SHIM_MODULES", "Interpreter", "mlci_path", "project_interpreter"]

SHIM_MODULES = (
    "process_exit.py",
    "run/pytest_main.py",
    "run/pytest_plugin.py",
    "run/affected_plugin.py",
    "run/file_reads.py",
    "run/warm/server.py",
)
"""mlci's modules that run in the project's interpreter, relative to the engine package (those that exist);
stdlib and pytest only."""

_ENGINE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Interpreter:
    """The Python that runs the tiers' commands."""

    path: Path
    why: str
    """Where it came from, in words ("python: in mlci.yaml:3", ".venv at the project root")."""

    @property
    def is_mlci(self) -> bool:
        """Whether it is mlci's own interpreter (mlci's modules import as they are)."""
        return _same_file(self.path, Path(sys.executable))

    @property
    def bin_dir(self) -> Path:
        """Its bin directory (not resolved: a venv's python is a link to the base interpreter)."""
        return self.path.parent


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.absolute() == b.absolute() or (a.resolve() == b.resolve() and a.parent == b.parent)
    except OSError:
        return False


def _venv_python(prefix: Path) -> Path | None:
    for name in ("bin/python", "bin/python3", "Scripts/python.exe"):
        candidate = prefix / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def project_interpreter(config: Config) -> Interpreter:
    """The project's interpreter (see the module's docstring for the order); the config's was checked at load."""
    if config.python is not None:
        origin = config.origins.get("python")
        return Interpreter(Path(config.python), f"python: at {origin.where if origin else 'the config'}")
    for name in (".venv", "venv"):
        found = _venv_python(config.root / name)
        if found is not None:
            return Interpreter(found, f"{name}/ at the project root")
    virtual_env = os.environ.get("VIRTUAL_ENV")
    if virtual_env:
        found = _venv_python(Path(virtual_env))
        if found is not None:
            return Interpreter(found, "$VIRTUAL_ENV")
    return Interpreter(Path(sys.executable), "mlci's own: no python: in the config, no .venv or venv, no $VIRTUAL_ENV")


def _shim_modules() -> list[str]:
    return [name for name in SHIM_MODULES if (_ENGINE / name).is_file()]


def _shim_digest() -> str:
    digest = hashlib.sha256()
    for name in _shim_modules():
        digest.update(name.encode())
        digest.update((_ENGINE / name).read_bytes())
    return digest.hexdigest()[:16]


def mlci_path(interpreter: Interpreter) -> str | None:
    """A directory to put first on `PYTHONPATH` so `interpreter` can import mlci's plugin and server; None when
    it is mlci's own interpreter.

    The directory is named for its content, written once (atomically, by rename) and then reused.
    """
    if interpreter.is_mlci:
        return None
    base = Path(tempfile.gettempdir()) / f"mlci-{os.getuid()}"
    target = base / f"pythonpath-{_shim_digest()}"
    if (target / "mlci" / "engine" / "run" / "pytest_plugin.py").is_file():
        return str(target)
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="pythonpath-", dir=base))
    try:
        for package in ("mlci/engine", "mlci/engine/run", "mlci/engine/run/warm"):
            (staging / package).mkdir(parents=True, exist_ok=True)
            (staging / package / "__init__.py").write_text("", encoding="utf-8")
        for name in _shim_modules():
            shutil.copyfile(_ENGINE / name, staging / "mlci" / "engine" / name)
        try:
            staging.rename(target)
        except OSError:  # another mlci made it first: theirs has the same content
            shutil.rmtree(staging, ignore_errors=True)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return str(target)
