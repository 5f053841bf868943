"""The layout is enforced: import-linter's contracts pass on the code, and fail on a planted violation.

Each test lints a copy of the sources (under a `mlci/` namespace, as installed), so a
violation can be planted without touching the checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_sources(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for name in ("engine", "tui"):
        shutil.copytree(REPO / name, root / "mlci" / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _lint(src: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), str(REPO / "pyproject.toml"), "--no-cache"],
        cwd=REPO,
        env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=False,
    )


def _plant(path: Path, line: str) -> None:
    text = path.read_text(encoding="utf-8")
    marker = "from __future__ import annotations\n"
    assert marker in text, path
    path.write_text(text.replace(marker, marker + line + "\n", 1), encoding="utf-8")


def test_the_code_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy_sources(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        # config (a low layer) reaching up into the loop
        ("engine/config/loader.py", "import mlci.engine.loop.session", "follow the data flow"),
        # two siblings of one layer: gates must not import git
        ("engine/gates/registry.py", "import mlci.engine.git.push", "follow the data flow"),
        # the engine importing the UI toolkit
        ("engine/events.py", "import textual", "headless"),
        # the TUI reaching into a run's internals instead of the session
        ("tui/app.py", "import mlci.engine.run.tier_run", "public surface"),
    ],
)
def test_a_planted_violation_fails(tmp_path: Path, module: str, planted: str, contract: str) -> None:
    src = _copy_sources(tmp_path)
    _plant(src / "mlci" / module, planted)
    result = _lint(src)
    assert result.returncode != 0, result.stdout
    broken = result.stdout[result.stdout.index("Broken contracts") :]
    assert contract in broken
    assert planted.split()[-1] in broken


def test_every_package_is_in_the_wheel() -> None:
    """A sub-package missing from pyproject's `packages` would be missing from an installed mlci."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        "mlci." + ".".join(init.parent.relative_to(REPO).parts)
        for name in ("engine", "tui")
        for init in (REPO / name).rglob("__init__.py")
    }
    assert on_disk <= listed, sorted(on_disk - listed)
