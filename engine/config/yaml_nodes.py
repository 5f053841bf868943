"""Read YAML (or TOML) into nodes that remember their line, so every error can name it.

PyYAML's composed node tree keeps marks but is awkward to validate; `Node` is a thin,
typed view of it: a value plus the 1-based line it started on. Validators in `config`
and `gatespec` walk these nodes and raise `ConfigError(path, node.line, ...)`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from mlci.engine.errors import ConfigError

__all__ = ["Node", "load_toml_table", "load_yaml"]


@dataclass(frozen=True)
class Node:
    """A YAML/TOML value with the file and line it came from."""

    value: Any
    """dict[str, Node], list[Node], or a scalar (str, int, float, bool, None)."""
    path: Path
    line: int | None
    key_line: int | None = None
    """For a mapping's value: the line of its key (where "unknown key" errors point)."""

    def error(self, message: str) -> ConfigError:
        return ConfigError(self.path, self.line, message)

    def key_error(self, message: str) -> ConfigError:
        return ConfigError(self.path, self.key_line or self.line, message)

    def mapping(self, what: str) -> dict[str, Node]:
        if not isinstance(self.value, dict):
            raise self.error(f"{what} must be a mapping, got {type_name(self.value)}")
        mapping: dict[str, Node] = self.value
        return mapping

    def fields(self, what: str, allowed: Collection[str], required: Collection[str] = ()) -> dict[str, Node]:
        """This mapping's entries, after checking every key is `allowed` and every `required` one is there."""
        mapping = self.mapping(what)
        for key, child in mapping.items():
            if key not in allowed:
                choices = ", ".join(sorted(allowed))
                raise child.key_error(f"unknown key {key!r} in {what} (expected one of: {choices})")
        for key in sorted(set(required) - mapping.keys()):
            raise self.error(f"{what} is missing {key!r}")
        return mapping

    def items(self) -> Iterator[tuple[str, Node]]:
        yield from self.mapping("value").items()

    def plain(self) -> Any:
        """The value with all nodes stripped, for printing."""
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


def type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    return f"a string ({value!r})"


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which PyYAML silently overwrites."""


def _convert(node: yaml.Node, path: Path, loader: _Loader) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise ConfigError(path, key_node.start_mark.line + 1, f"key {key!r} must be a string")
            if key in out:
                raise ConfigError(path, key_node.start_mark.line + 1, f"duplicate key {key!r}")
            value = _convert(value_node, path, loader)
            out[key] = Node(value.value, path, value.line, key_node.start_mark.line + 1)
        return Node(out, path, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(item, path, loader) for item in node.value], path, line)
    return Node(loader.construct_object(node, deep=True), path, line)


def load_yaml(path: Path) -> Node:
    """Parse a YAML file into line-aware nodes; a syntax error names its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read: {exc.strerror or exc}") from None
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return Node({}, path, 1)
        return _convert(root, path, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(path, line, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _toml_nodes(value: Any, path: Path, lines: list[str], key: str, fallback: int) -> Node:
    line = _find_key_line(lines, key, fallback)
    if isinstance(value, dict):
        return Node(
            {k: _toml_nodes(v, path, lines, k, line) for k, v in value.items()},
            path,
            line,
        )
    if isinstance(value, list):
        return Node([_toml_nodes(v, path, lines, "", line) for v in value], path, line)
    return Node(value, path, line)


def _find_key_line(lines: list[str], key: str, fallback: int) -> int:
    """tomllib keeps no positions: find the key's line by text, searching forward of its parent."""
    if not key:
        return fallback
    pattern = re.compile(rf"^\s*(\[+[^\]]*\.)?\"?{re.escape(key)}\"?\s*(=|\])")
    for number in range(max(fallback, 1), len(lines) + 1):
        if pattern.search(lines[number - 1]):
            return number
    return fallback


def load_toml_table(path: Path, dotted: str) -> Node | None:
    """The `[tool.x]` table of a TOML file as line-aware nodes, or None when absent."""
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError(path, int(match.group(1)) if match else None, f"invalid TOML: {exc}") from None
    table: Any = data
    for part in dotted.split("."):
        if not isinstance(table, dict) or part not in table:
            return None
        table = table[part]
    lines = text.splitlines()
    header = re.compile(rf"^\s*\[\s*{re.escape(dotted)}(\.|\s*\])")
    start = next((i + 1 for i, text_line in enumerate(lines) if header.search(text_line)), 1)
    return _toml_nodes(table, path, lines, "", start)
