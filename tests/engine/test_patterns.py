"""Trigger patterns: gitignore's language, answering with the rule that decided."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mlci.engine.config.patterns import PatternSet


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        # `**` spans any number of directories, zero included.
        ("**/*.py", "train.py", True),
        ("**/*.py", "src/credit/train.py", True),
        ("**/*.py", "src/credit/train.pyc", False),
        ("src/**/*.py", "src/train.py", True),
        ("src/**/*.py", "src/a/b/c/train.py", True),
        ("src/**/*.py", "lib/src/train.py", False),
        ("src/**", "src/a/b.txt", True),
        ("src/**", "src", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/x/y/c", False),
        ("**", "anything/at/all", True),
        # `*` and `?` stay within one segment.
        ("src/*.py", "src/train.py", True),
        ("src/*.py", "src/credit/train.py", False),
        ("data/?.csv", "data/a.csv", True),
        ("data/?.csv", "data/ab.csv", False),
        ("data/?.csv", "data//.csv", False),
        # A pattern without a slash matches the basename at any depth.
        ("*.dvc", "credit.csv.dvc", True),
        ("*.dvc", "data/raw/credit.csv.dvc", True),
        ("params.yaml", "params.yaml", True),
        ("params.yaml", "sub/params.yaml", True),
        # A slash anywhere but at the end anchors the pattern at the root.
        ("/params.yaml", "params.yaml", True),
        ("/params.yaml", "sub/params.yaml", False),
        ("tests/unit/*.py", "x/tests/unit/a.py", False),
        # A matched directory covers everything below it.
        ("tests/unit", "tests/unit/test_a.py", True),
        ("data", "data/raw/credit.csv", True),
        ("data", "metadata.csv", False),
        # A trailing slash matches directories only.
        ("tests/data/", "tests/data/test_schema.py", True),
        ("tests/data/", "tests/data", False),
        ("tests/data/", "tests/data/", True),
        ("__pycache__/", "src/credit/__pycache__/m.cpython-311.pyc", True),
        ("__pycache__/", "src/__pycache__", False),
        # Character classes, negated ones, and escapes.
        ("model_v[0-9].pt", "models/model_v3.pt", True),
        ("model_v[0-9].pt", "models/model_vx.pt", False),
        ("model_v[!0-9].pt", "models/model_vx.pt", True),
        ("model_v[!0-9].pt", "models/model_v3.pt", False),
        ("notes\\*.md", "notes*.md", True),
        ("notes\\*.md", "notesX.md", False),
        ("a**b.txt", "aXYb.txt", True),
        ("a**b.txt", "a/b.txt", False),
        # Regex metacharacters are literal.
        ("data+(1).csv", "data+(1).csv", True),
        ("data+(1).csv", "dataa(1).csv", False),
        ("./src/x.py", "src/x.py", False),
    ],
)
def test_single_pattern(pattern: str, path: str, expected: bool) -> None:
    assert (PatternSet([pattern]).matches(path) == pattern) is expected


def test_the_rule_that_matched_is_returned_as_written() -> None:
    rules = PatternSet(["src/**/*.py", "tests/unit/**", "  params.yaml  "])
    assert rules.matches("src/credit/features.py") == "src/**/*.py"
    assert rules.matches("tests/unit/test_features.py") == "tests/unit/**"
    assert rules.matches("params.yaml") == "  params.yaml  "
    assert rules.matches("README.md") is None


def test_the_last_matching_rule_wins() -> None:
    rules = PatternSet(["**/*.py", "src/**"])
    assert rules.matches("src/a.py") == "src/**"
    assert rules.matches("tests/a.py") == "**/*.py"


def test_negation_excludes_what_earlier_rules_matched() -> None:
    rules = PatternSet(["**/*.py", "!tests/data/**", "!tests/model/**"])
    assert rules.matches("src/credit/features.py") == "**/*.py"
    assert rules.matches("tests/unit/test_features.py") == "**/*.py"
    assert rules.matches("tests/data/test_schema.py") is None
    assert rules.matches("tests/model/conftest.py") is None


def test_a_later_rule_includes_again_after_a_negation() -> None:
    rules = PatternSet(["tests/**", "!tests/data/**", "tests/data/test_split.py"])
    assert rules.matches("tests/data/test_schema.py") is None
    assert rules.matches("tests/data/test_split.py") == "tests/data/test_split.py"
    assert rules.matches("tests/unit/a.py") == "tests/**"


def test_a_negation_alone_matches_nothing() -> None:
    assert PatternSet(["!*.py"]).matches("a.py") is None


def test_an_escaped_bang_is_a_literal() -> None:
    rules = PatternSet(["\\!important.txt"])
    assert rules.matches("!important.txt") == "\\!important.txt"
    assert rules.matches("important.txt") is None


def test_blank_patterns_are_skipped_and_an_empty_set_matches_nothing() -> None:
    assert not PatternSet([])
    assert not PatternSet(["", "   ", "/"])
    assert PatternSet(["", "*.md"]).matches("README.md") == "*.md"
    assert PatternSet([]).matches("anything") is None


def test_leading_dot_slash_in_the_path_is_ignored() -> None:
    assert PatternSet(["src/*.py"]).matches("./src/x.py") == "src/*.py"


_segment = st.text(alphabet="abcxyz_.-", min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))


@given(st.lists(_segment, min_size=1, max_size=5))
def test_double_star_matches_every_path_and_a_literal_path_matches_itself(parts: list[str]) -> None:
    path = "/".join(parts)
    assert PatternSet(["**"]).matches(path) == "**"
    assert PatternSet(["/" + path]).matches(path) == "/" + path
    assert PatternSet(["/" + path]).matches(path + "/below") == "/" + path
    assert PatternSet(["!**"]).matches(path) is None


@given(st.lists(_segment, min_size=1, max_size=5), _segment)
def test_a_basename_pattern_matches_at_every_depth(parts: list[str], name: str) -> None:
    assert PatternSet([name]).matches("/".join([*parts, name])) == name
    assert PatternSet(["**/" + name]).matches("/".join([*parts, name])) == "**/" + name
