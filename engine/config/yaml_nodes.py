"""Read YAML (or TOML) into nodes that remember their line, so every error can name it.

PyYAML's composed node tree keeps marks but is awkward to validate; `Node` is a thin,
typed view of it: a value plus the 1-based line it started on. Validators in `config`
and `gatespec` walk these nodes and raise `ConfigError(path, node.line, ...)`.

Reading fails closed, fast, and in bounded memory: a config file is small, so a file over
`MAX_FILE_BYTES`, more than `MAX_VALUES` values once aliases are expanded (the "billion
laughs" alias bomb), nesting deeper than `MAX_DEPTH`, bytes that are not UTF-8, a value
Python cannot build (a 5000-digit integer, 30 February) or a number that is not finite
where one is expected: each is one `ConfigError` naming the file and line, never a hang or
a traceback. Aliases are counted while the document is composed, before anything expands.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from mlci.engine.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_VALUES", "Node", "load_toml_table", "load_yaml", "read_text"]

MAX_FILE_BYTES = 1 << 20
"""A config or gate file is a few hundred bytes; a megabyte is not one, and is refused unread."""
MAX_VALUES = 2_000
"""Values in a document once every alias is expanded: the sample project's files have about 60, and PyYAML
composes 10 000 to 40 000 values a second (pure Python), so this bounds the slowest file that loads."""
MAX_DEPTH = 64
"""How deeply mappings and lists may nest (PyYAML composes recursively)."""
YAML_VERSION_DIGITS = 9
"""Digits a `%YAML` directive's version number may have (YAML 1.2 needs one)."""
_SHOWN_CHARS = 40
"""How much of an unreadable value an error quotes."""


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

    def number(
        self,
        what: str,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        integer: bool = False,
        unit: str = "",
    ) -> float:
        """This value as a finite number within the bounds: NaN, infinity and overflow fail here, at its line.

        Args:
            integer: Only a whole number will do (a count, a size in rows).
            unit: What the number counts ("seconds"), for the error line.
        """
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
            kind = ("a whole number" if integer else "a number") + (f" of {unit}" if unit else "")
            raise self.error(f"{what} must be {kind}, got {type_name(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer with hundreds of digits
            raise self.error(f"{what} is out of range: {_shown(value)} (too large)") from None
        if math.isnan(number) or math.isinf(number):
            raise self.error(f"{what} must be a finite number, got {value}")
        if low is not None and (number < low or (low_open and number == low)):
            bound = f"greater than {low:g}" if low_open else f"at least {low:g}"
            raise self.error(f"{what} is out of range: {_shown(value)} (must be {bound})")
        if high is not None and number > high:
            raise self.error(f"{what} is out of range: {_shown(value)} (must be at most {high:g})")
        return number

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
        return f"a number ({_shown(value)})"
    return f"a string ({_shown(value)})"


def _shown(value: Any) -> str:
    """A value for an error line: repr'd (so one line), and cut short."""
    text = repr(value) if isinstance(value, str) else str(value) if isinstance(value, float) else _int_text(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _int_text(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 128:  # str() of a huge int is slow, or refused
        return f"a {len(hex(value)) - 2}-hex-digit integer"
    return repr(value)


def read_text(path: Path) -> str:
    """A config file's text: a missing file, one too large or bytes that are not UTF-8 name the file (and line)."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(path, None, f"too large for a config file (more than {MAX_FILE_BYTES} bytes)")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(path, line, f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Loader(yaml.SafeLoader):
    """SafeLoader that counts what it composes, so an alias bomb fails before anything expands.

    PyYAML composes an alias as a second reference to the anchored node, so the tree it
    returns is small; it is every walk over it (ours, or constructing Python values) that
    expands `2**N` copies. Each node composed counts one value, each alias counts the
    expanded size of what it names (memoised per node, so counting is linear in the text).
    """

    def __init__(self, text: str, path: Path) -> None:
        super().__init__(text)
        self._path = path
        self._values = 0
        self._depth = 0
        self._sizes: dict[int, int] = {}
        self._open_anchors: set[str] = set()

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.AliasEvent):
            anchor = str(event.anchor)
            if anchor in self._open_anchors:
                raise ConfigError(self._path, line, f"invalid YAML: alias *{anchor} is inside the value it names")
            if anchor in self.anchors:
                self._count(self._expanded_size(self.anchors[anchor]), line)
            return super().compose_node(parent, index)
        self._count(1, line)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ConfigError(self._path, line, f"invalid YAML: nested more than {MAX_DEPTH} levels deep")
        opened: str | None = getattr(event, "anchor", None)
        if opened is not None:
            self._open_anchors.add(opened)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if opened is not None:
                self._open_anchors.discard(opened)

    def scan_yaml_directive_number(self, start_mark: yaml.Mark) -> int:
        """PyYAML's own, with the digits counted first: `%YAML 99...9` with thousands of digits would reach
        `int()` and fail there (Python's limit on converting long digit strings), with no line."""
        length = 0
        while "0" <= self.peek(length) <= "9":
            length += 1
        if length > YAML_VERSION_DIGITS:
            raise yaml.scanner.ScannerError(
                "while scanning a directive",
                start_mark,
                f"expected a version number, but found {length} digits",
                self.get_mark(),
            )
        value: int = super().scan_yaml_directive_number(start_mark)
        return value

    def fetch_flow_collection_start(self, TokenClass: type) -> None:
        # Refused as the scanner meets it: past this point PyYAML's simple-key lookahead turns quadratic.
        if self.flow_level >= MAX_DEPTH:
            raise ConfigError(self._path, self.line + 1, f"invalid YAML: nested more than {MAX_DEPTH} levels deep")
        super().fetch_flow_collection_start(TokenClass)

    def _count(self, values: int, line: int | None) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise ConfigError(
                self._path, line, f"invalid YAML: more than {MAX_VALUES} values once aliases are expanded (alias bomb?)"
            )

    def _expanded_size(self, node: yaml.Node) -> int:
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, yaml.MappingNode):
            size += sum(self._expanded_size(k) + self._expanded_size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            size += sum(self._expanded_size(item) for item in node.value)
        # Capped: an anchor's size only matters up to the budget, and the cap keeps the integers small.
        self._sizes[id(node)] = size = min(size, MAX_VALUES + 1)
        return size

    def construct_scalar_value(self, node: yaml.Node, path: Path) -> Any:
        """The Python value of a scalar; one PyYAML cannot build (30 February, 5000 digits) is a ConfigError."""
        try:
            return self.construct_object(node, deep=True)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # PyYAML's constructors fail in many ways (`!!float ''` is an IndexError)
            line = node.start_mark.line + 1
            if "integer string conversion" in str(exc):  # Python's 4300-digit limit on int()
                raise ConfigError(path, line, "a number too long to read") from None
            shown = _shown(str(node.value))
            raise ConfigError(path, line, f"cannot read the value {shown}: {_one_line(str(exc))}") from None


def _convert(node: yaml.Node, path: Path, loader: _Loader) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(path, key_line, "a key must be a string, not a mapping or a list")
            key = loader.construct_scalar_value(key_node, path)
            if not isinstance(key, str):
                raise ConfigError(path, key_line, f"key {_shown(key)} must be a string")
            if key in out:
                raise ConfigError(path, key_line, f"duplicate key {_shown(key)}")
            value = _convert(value_node, path, loader)
            out[key] = Node(value.value, path, value.line, key_line)
        return Node(out, path, line)
    if isinstance(node, yaml.SequenceNode):
        return Node([_convert(item, path, loader) for item in node.value], path, line)
    return Node(loader.construct_scalar_value(node, path), path, line)


def load_yaml(path: Path) -> Node:
    """Parse a YAML file into line-aware nodes; every way it can be wrong is a ConfigError with its line."""
    text = read_text(path)
    loader: _Loader | None = None
    try:
        loader = _Loader(text, path)  # PyYAML's reader checks every character here
        root = loader.get_single_node()
        if root is None:
            return Node({}, path, 1)
        return _convert(root, path, loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(path, line, f"invalid YAML: {_one_line(problem)}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "\0")
        raise ConfigError(path, line, f"invalid YAML: {exc.reason} (U+{char:04X})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"invalid YAML: {_one_line(str(exc))}") from None
    finally:
        if loader is not None:
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
    text = read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        # "(at end of document)" names no line: the last one is where the document ended.
        line = int(match.group(1)) if match else max(1, len(text.splitlines()))
        raise ConfigError(path, line, f"invalid TOML: {_one_line(str(exc))}") from None
    except ValueError:  # not a TOMLDecodeError: Python refuses an integer of more than 4300 digits
        long_number = re.search(r"[0-9_]{4000,}", text)
        line = text.count("\n", 0, long_number.start()) + 1 if long_number else max(1, len(text.splitlines()))
        raise ConfigError(path, line, "invalid TOML: a number too long to read") from None
    table: Any = data
    for part in dotted.split("."):
        if not isinstance(table, dict) or part not in table:
            return None
        table = table[part]
    lines = text.splitlines()
    header = re.compile(rf"^\s*\[\s*{re.escape(dotted)}(\.|\s*\])")
    start = next((i + 1 for i, text_line in enumerate(lines) if header.search(text_line)), 1)
    return _toml_nodes(table, path, lines, "", start)
