"""`mlci config`: the effective config, the gate file included, each value with its origin.

Credentials in URLs (a tracking URI with a password) are masked in what it prints.
"""

from __future__ import annotations

import argparse
import builtins
import json
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument("--json", action="store_true", help="print the config as JSON")


def _lines(prefix: str, value: Any, origins: dict[str, Any]) -> list[str]:
    if isinstance(value, dict) and value:
        out = []
        for key, child in value.items():
            dotted = f"{prefix}.{key}" if prefix else key
            out.extend(_lines(dotted, child, origins))
        return out
    origin = origins.get(prefix)
    shown = json.dumps(value)
    return [f"{prefix} = {shown}" + (f"    # {origin}" if origin else "")]


def runner_lines(config: Any) -> list[str]:
    """Which interpreter runs the tiers and why; the runner, and its warm servers with their resident memory."""
    from mlci.engine.run.interpreter import project_interpreter
    from mlci.engine.run.warm.client import server_statuses

    interpreter = project_interpreter(config)
    lines = [f"python: {interpreter.path} ({interpreter.why})"]
    servers = server_statuses(config.root)
    if config.runner == "cold":
        lines.append("runner: cold (a fresh interpreter for every run)")
    elif not servers:
        lines.append("runner: warm (no server running: one starts with the first run of mlci watch or the dashboard)")
    for server in servers:
        rss = f"{server.rss_bytes / 2**20:.0f} MiB" if server.rss_bytes is not None else "RSS unknown"
        lines.append(
            f"runner: warm, {server.tier} tier server pid {server.pid}: {rss} resident, "
            f"warmed up in {server.warmup_s:.1f}s, {len(server.preloaded)} modules preloaded"
        )
    return lines


def run(args: argparse.Namespace) -> int:
    from mlci.engine.config.loader import load_config
    from mlci.engine.config.redact import mask_credentials

    def print(line: str) -> None:  # shadows the builtin: every line of this command goes through the mask
        builtins.print(mask_credentials(line))

    config = load_config(Path(args.path))
    data = config.as_dict()
    if config.gates is not None:
        data["gate_spec"] = config.gates.as_dict()
    if args.json:
        data["origins"] = {k: str(v) for k, v in config.origins.items()}
        print(json.dumps(data, indent=2))
        return 0
    source = config.source.relative_to(config.root) if config.source else "none (everything inferred)"
    print(f"# project: {config.root}")
    print(f"# config file: {source}")
    for line in runner_lines(config):
        print(f"# {line}")
    for line in _lines("", {k: v for k, v in data.items() if k != "gate_spec"}, config.origins):
        print(line)
    if config.gates is not None and config.gates_path is not None:
        print(f"# gates: {config.gates_path.relative_to(config.root)} (valid)")
        for line in _lines("gate", data["gate_spec"], {}):
            print(line)
    return 0
