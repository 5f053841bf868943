"""`mlci init [--force] [PATH]`: write mlci.yaml with the configuration mlci infers, commented with each origin.

Refuses over an existing mlci.yaml (or a `[tool.mlci]` table, which mlci.yaml would
shadow) unless `--force`. The written file is loaded back before the command says it is
done; a file that does not load is taken back. Exit 0 written, 1 refused, 2 a malformed config.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="project root (default: the current directory)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing mlci.yaml")


def run(args: argparse.Namespace) -> int:
    from mlci.engine.config.config_writer import render_config
    from mlci.engine.config.loader import CONFIG_FILE, load_config
    from mlci.engine.config.new_file import write_new_file
    from mlci.engine.errors import MlciError

    config = load_config(Path(args.path), with_gates=False)
    target = config.root / CONFIG_FILE
    if config.source is not None and config.source != target and not args.force:
        raise MlciError(f"{config.source.name} [tool.mlci] already configures mlci: pass --force to write mlci.yaml")
    previous = target.read_text(encoding="utf-8") if target.is_file() else None
    text = render_config(config)
    write_new_file(target, text, force=args.force, shown_as=CONFIG_FILE)
    try:
        load_config(config.root, with_gates=False)
    except MlciError:
        # What mlci wrote must load; if it does not, the user's file (or none) comes back.
        if previous is None:
            target.unlink()
        else:
            target.write_text(previous, encoding="utf-8")
        raise
    print(f"wrote {CONFIG_FILE}: {len(config.tiers)} tier(s) ({', '.join(t.value for t in config.tiers)})")
    print("each value says where it came from; `mlci config` shows the effective configuration")
    return 0
