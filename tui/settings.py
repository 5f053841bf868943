"""What the dashboard remembers between runs (the theme), in one small JSON file.

`$XDG_CONFIG_HOME/mlci/tui.json`, else `~/.config/mlci/tui.json`. A missing or unreadable
file means the defaults: a preference is never worth an error on start.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

__all__ = ["load_theme", "save_theme", "settings_path"]


def settings_path() -> Path:
    """Where the settings live."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mlci" / "tui.json"


def _read() -> dict[str, object]:
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_theme() -> str | None:
    """The theme chosen last time, if any."""
    theme = _read().get("theme")
    return theme if isinstance(theme, str) else None


def save_theme(theme: str) -> None:
    """Remember `theme`; written atomically, failures ignored (a read-only home is not an error)."""
    path = settings_path()
    data = _read()
    data["theme"] = theme
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
