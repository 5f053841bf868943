"""Gitignore-style path patterns: the language of the per-tier trigger rules.

    src/**/*.py      any .py file below src/ (`**` spans any number of directories)
    *.dvc            a pattern without a slash matches the basename at any depth
    /params.yaml     a leading slash anchors a slash-less pattern to the project root
    tests/data/      a trailing slash matches a directory (and so everything below it)
    !tests/data/**   a leading `!` negates: the path is excluded again

As in gitignore, a pattern that matches a directory matches everything below it, and
the last pattern that matches a path decides: if it is a negation, the path does not
match. `matches` returns the rule text that decided, so a plan can say why a tier ran.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["PatternSet", "compile_pattern"]


@dataclass(frozen=True)
class _Rule:
    text: str
    """The pattern as written, returned by `PatternSet.matches`."""
    regex: re.Pattern[str]
    negated: bool


def _translate_segment(segment: str) -> str:
    """Regex for one path segment: `*` and `?` never cross a `/`; `[...]` is a character class."""
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        c = segment[i]
        if c == "*":
            while i + 1 < n and segment[i + 1] == "*":  # `a**b` is an ordinary `*`, as in gitignore
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(segment[i]))
        elif c == "[":
            end = segment.find("]", i + 2 if segment[i + 1 : i + 2] in ("!", "^", "]") else i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = segment[i + 1 : end]
                negate = body[:1] in ("!", "^")
                chars = "".join(ch if ch == "-" else re.escape(ch) for ch in (body[1:] if negate else body))
                out.append("(?!/)[" + ("^" if negate else "") + chars + "]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """The regex a (non-negated) pattern's path must fully match; None for a blank pattern.

    The regex also matches any path below a matching directory, which is how gitignore
    treats a matched directory; a trailing-slash pattern matches only directories, so
    only paths strictly below the match (or the match itself written with a trailing `/`).
    """
    dir_only = pattern.endswith("/")
    body = pattern.strip("/") if dir_only else pattern.lstrip("/")
    if not body:
        return None
    anchored = "/" in pattern.rstrip("/")
    segments = body.split("/")
    parts: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            # `**/` at any position spans zero or more directories; a final `/**` everything inside.
            parts.append(".*" if last else "(?:[^/]*/)*")
        else:
            parts.append(_translate_segment(segment) + ("" if last else "/"))
    regex = "".join(parts)
    if not anchored:
        regex = "(?:.*/)?" + regex
    suffix = "/.*" if dir_only else "(?:/.*)?"
    return re.compile(regex + suffix, re.DOTALL)


class PatternSet:
    """An ordered set of gitignore-style patterns; the last one that matches a path decides.

    Blank patterns are skipped. A pattern may start with `\\!` to match a literal `!`.
    """

    __slots__ = ("_rules", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        rules: list[_Rule] = []
        for text in self.patterns:
            raw = text.strip()
            negated = raw.startswith("!")
            body = raw[1:] if negated else (raw[1:] if raw.startswith("\\!") else raw)
            regex = compile_pattern(body)
            if regex is not None:
                rules.append(_Rule(text, regex, negated))
        # Checked last-first: the first hit from the end is the rule that decides.
        self._rules = tuple(reversed(rules))

    def matches(self, path: str) -> str | None:
        """The rule that makes `path` (project-relative, POSIX) match, or None.

        A path ending in `/` is a directory, so trailing-slash patterns can match it.
        """
        while path.startswith("./"):
            path = path[2:]
        for rule in self._rules:
            if rule.regex.fullmatch(path):
                return None if rule.negated else rule.text
        return None

    def __bool__(self) -> bool:
        return bool(self._rules)

    def __repr__(self) -> str:
        return f"PatternSet({list(self.patterns)!r})"
