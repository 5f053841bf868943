"""`mlci-tui --serve`: the dashboard in a browser, through textual-serve.

For a dashboard that runs on a remote GPU machine, or on a laptop in a talk: each browser
tab that connects gets its own `mlci-tui` process for the project, started by
textual-serve. The page is served from textual-serve's own static files and a copy of its
template that loads nothing from outside (its stock template fetches a web font).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve"]

DEFAULT_HOST = "127.0.0.1"
"""Loopback by default: serving the dashboard to a network is a choice (`--host 0.0.0.0`)."""
DEFAULT_PORT = 8000
TEMPLATES = Path(__file__).with_name("serve_templates")


def serve(project: Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> int:
    """Serve the dashboard of `project` on http://host:port until Ctrl-C."""
    import textual_serve
    from textual_serve.server import Server

    command = shlex.join([sys.executable, "-m", "mlci.tui.main", str(project)])
    statics = Path(textual_serve.__file__).with_name("static")
    server = Server(
        command,
        host=host,
        port=port,
        title=f"mlci · {project.name}",
        statics_path=statics,
        templates_path=TEMPLATES,
    )
    server.serve()
    return 0
