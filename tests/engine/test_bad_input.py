"""Bad input fails closed, fast: every malformed config or gate file is one line, file and line, exit 2.

The cases a new user hit (issue 11): a 7-level YAML alias bomb in `model_gates.yaml` (23 s and
800 MB before; now refused while it is being composed), a byte that is not UTF-8 (a
traceback before), and `.nan` / `.inf` tier timeouts (accepted before, disabling the
timeout). Then a fuzz test mutates the sample project's own `mlci.yaml` and
`model_gates.yaml` thousands of times: each mutant either loads, with every number finite,
or raises the one-line `ConfigError`. A few mutants go through the real `mlci config`.
"""

from __future__ import annotations

import json
import random
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mlci.engine.config.loader import load_config
from mlci.engine.config.yaml_nodes import MAX_VALUES
from mlci.engine.errors import ConfigError

pytestmark = pytest.mark.usefixtures("only_testmon")

SAMPLE = Path(__file__).resolve().parents[2] / "sample_project"
FILES = ("mlci.yaml", "model_gates.yaml")


def alias_bomb(levels: int = 7, width: int = 9) -> str:
    """The classic "billion laughs": each level names the one below `width` times (9**7 = 4.8 million)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{refs}]")
    lines.append(f"performance: *l{levels - 1}")
    return "\n".join(lines) + "\n"


def make_project(root: Path) -> Path:
    """The sample project's layout and its two files, without its data or code."""
    for folder in ("tests/unit", "tests/data", "tests/model"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for name in (*FILES, "dvc.yaml"):
        shutil.copyfile(SAMPLE / name, root / name)
    return root


def mlci(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci.engine", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def assert_one_line_error(exc: ConfigError, path: Path, data: bytes) -> None:
    text = str(exc)
    assert "\n" not in text and "\r" not in text, text
    match = re.match(rf"^{re.escape(str(path))}:(\d+): \S", text)
    assert match is not None, text
    # YAML breaks lines at a lone CR too (and, as YAML 1.1, at NEL, LS and PS), as editors count them:
    # b"\r\rm" has its `m` on line 3. A CR LF counts twice here, which only loosens the bound.
    breaks = sum(data.count(mark.encode()) for mark in ("\n", "\r", "\x85", "\u2028", "\u2029"))
    assert 1 <= int(match.group(1)) <= breaks + 2, text


def assert_cli_one_line(result: subprocess.CompletedProcess[str], name: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.search(rf"{re.escape(name)}:\d+: ", lines[0]), lines[0]
    assert "Traceback" not in result.stderr


# -- the cases from the issue ------------------------------------------------------------------


def test_an_alias_bomb_is_refused_at_its_line_in_bounded_memory(tmp_path: Path) -> None:
    make_project(tmp_path)
    (tmp_path / "model_gates.yaml").write_text(alias_bomb())
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.path.name == "model_gates.yaml"
    assert caught.value.line is not None and 2 <= caught.value.line <= 7
    assert "alias" in caught.value.message
    assert f"more than {MAX_VALUES} values" in caught.value.message

    # The real binary, with its address space capped at 1 GiB (the bomb took 800 MB before).
    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    result = subprocess.run(
        [sys.executable, "-m", "mlci.engine", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        preexec_fn=cap_memory,
    )
    assert_cli_one_line(result, "model_gates.yaml")


def test_an_alias_that_names_its_own_value_is_refused(tmp_path: Path) -> None:
    make_project(tmp_path)
    (tmp_path / "mlci.yaml").write_text("tiers:\n  code: &loop\n    tests: [*loop]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.line == 3
    assert "inside the value it names" in caught.value.message


def test_aliases_within_the_budget_still_work(tmp_path: Path) -> None:
    make_project(tmp_path)
    (tmp_path / "mlci.yaml").write_text(
        "tiers:\n  code:\n    tests: &unit [tests/unit]\n    triggers: ['**/*.py']\n  data:\n    tests: *unit\n"
    )
    config = load_config(tmp_path)
    assert [t.tests for t in config.tiers.values()][:2] == [("tests/unit",), ("tests/unit",)]


BAD: list[tuple[str, str, bytes, int, str]] = [
    # (id, file, content, line, what the message must say)
    ("not-utf8", "model_gates.yaml", b"size: {max_mb: 50}\nfairness: {metric: \xff\xfe}\n", 2, "not UTF-8"),
    ("not-utf8-toml", "pyproject.toml", b'[tool.mlci]\n\n[tool.mlci.git]\nremote = "\xe9"\n', 4, "not UTF-8"),
    ("control-char", "mlci.yaml", b"git:\n  remote: \x07\n", 2, "special characters"),
    ("timeout-nan", "mlci.yaml", b"tiers:\n  code:\n    timeout: .nan\n", 3, "finite"),
    ("timeout-inf", "mlci.yaml", b"tiers:\n  code:\n    timeout: .inf\n", 3, "finite"),
    ("timeout-overflow-float", "mlci.yaml", b"tiers:\n  data:\n    timeout: 1.0e+400\n", 3, "finite"),
    ("timeout-overflow-int", "mlci.yaml", b"tiers:\n  code:\n    timeout: 0x" + b"f" * 400 + b"\n", 3, "too large"),
    ("timeout-too-long", "mlci.yaml", b"tiers:\n  code:\n    timeout: 99999999999\n", 3, "out of range"),
    ("idle-timeout-nan", "mlci.yaml", b"runner: warm\nrunner_idle_timeout: .nan\n", 2, "finite"),
    ("int-too-long", "mlci.yaml", b"tiers:\n  code:\n    timeout: " + b"9" * 5000 + b"\n", 3, "too long"),
    ("toml-nan", "pyproject.toml", b"[tool.mlci.tiers.code]\ntimeout = nan\n", 2, "finite"),
    ("toml-inf", "pyproject.toml", b"[tool.mlci.tiers.code]\n\ntimeout = -inf\n", 3, "finite"),
    ("toml-syntax", "pyproject.toml", b"[tool.mlci]\ngit = {remote = }\n", 2, "invalid TOML"),
    ("toml-int-too-long", "pyproject.toml", b"[tool.mlci]\nx = " + b"9" * 5000 + b"\n", 2, "too long"),
    ("gate-nan", "model_gates.yaml", b"performance:\n  accuracy: {min: .nan}\n", 2, "finite"),
    ("gate-inf", "model_gates.yaml", b"latency: {p50_ms: 10}\nsize: {max_mb: .inf}\n", 2, "finite"),
    ("gate-int-overflow", "model_gates.yaml", b"size:\n  max_mb: 0x" + b"f" * 400 + b"\n", 2, "too large"),
    ("bad-date", "mlci.yaml", b"mlflow:\n  experiment: 2001-02-30\n", 2, "cannot read the value"),
    ("too-deep", "mlci.yaml", b"git: " + b"[" * 200 + b"]" * 200 + b"\n", 1, "nested more than"),
    ("key-not-scalar", "mlci.yaml", b"? [a, b]\n: 1\n", 1, "must be a string"),
    ("yaml-version-too-long", "mlci.yaml", b"%YAML " + b"9" * 5000 + b"\n---\ngit: {}\n", 1, "version number"),
    ("python-tag", "mlci.yaml", b"git:\n  remote: !!python/name:os.system ''\n", 2, "invalid YAML"),
    ("bad-pattern", "mlci.yaml", b"tiers:\n  code:\n    triggers:\n      - src/**\n      - '[z-a].py'\n", 5, "pattern"),
]


@pytest.mark.parametrize(
    ("name", "content", "line", "what"), [(f, c, n, w) for _, f, c, n, w in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_is_one_line_with_file_and_line(
    tmp_path: Path, name: str, content: bytes, line: int, what: str
) -> None:
    make_project(tmp_path)
    if name == "pyproject.toml":
        (tmp_path / "mlci.yaml").unlink()  # mlci.yaml wins over [tool.mlci]
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert caught.value.line == line, str(caught.value)
    assert what in caught.value.message
    assert_one_line_error(caught.value, tmp_path / name, content)


@pytest.mark.parametrize("case", ["not-utf8", "timeout-nan", "toml-nan", "int-too-long"])
def test_bad_input_through_the_cli_exits_2_and_runs_nothing(tmp_path: Path, case: str) -> None:
    _, name, content, line, _ = next(b for b in BAD if b[0] == case)
    make_project(tmp_path)
    if name == "pyproject.toml":
        (tmp_path / "mlci.yaml").unlink()
    (tmp_path / name).write_bytes(content)
    (tmp_path / "tests" / "unit" / "test_ran.py").write_text(
        "from pathlib import Path\n\ndef test_ran():\n    Path('RAN').write_text('x')\n"
    )
    for command in (("config",), ("run", "--tier", "code")):
        result = mlci(*command, cwd=tmp_path)
        assert_cli_one_line(result, name)
        assert f"{name}:{line}: " in result.stderr
    assert not (tmp_path / "RAN").exists()


# -- the fuzz test --------------------------------------------------------------------------------

TOKENS: tuple[bytes, ...] = (
    b"&a ",
    b"*a",
    b"&b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
    b"<<: *a\n",
    b"\xff",
    b"\xc3",
    b"\xef\xbb\xbf",
    b"\x00",
    b"\x07",
    b"\t",
    b": ",
    b"- ",
    b"? ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"'",
    b'"',
    b"\\",
    b"#",
    b"\n",
    b"  ",
    b"---\n",
    b"%YAML 1.1\n",
    b"!!binary ",
    b"!!float ",
    b"!!python/object/apply:os.system ",
    b"!custom ",
    b"null",
    b"~",
)
NUMBERS: tuple[bytes, ...] = (
    b".nan",
    b".NaN",
    b".inf",
    b"-.inf",
    b"1.0e+400",
    b"-1.0e+400",
    b"1.0e-400",
    b"9" * 5000,
    b"0x" + b"f" * 400,
    b"-1",
    b"0",
    b"-0.0",
    b"1e3",
    b"1_000",
    b"0o17",
    b"0b101",
    b"1:30",
    b"nan",
    b"inf",
    b"2001-02-30",
    b"2001-12-14t21:59:43.10-05:00",
    b"true",
    b'""',
    b"99999999999999999999",
)
_NUMBER = re.compile(rb"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def bomb_lines(levels: int) -> bytes:
    lines = [b"z0: &z0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        refs = b", ".join([f"*z{level - 1}".encode()] * 9)
        lines.append(f"z{level}: &z{level} [".encode() + refs + b"]")
    return b"\n".join(lines) + b"\n"


@st.composite
def mutants(draw: st.DrawFn, original: bytes) -> bytes:
    """The original file after one to four byte flips, truncations, insertions, number swaps or bombs."""
    data = original
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "truncate", "insert", "delete", "number", "number", "bomb")))
        if op == "flip" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
        elif op == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif op == "insert":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.sampled_from(TOKENS)) + data[at:]
        elif op == "delete" and data:
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + data[at + draw(st.integers(1, 8)) :]
        elif op == "number":
            spans = list(_NUMBER.finditer(data))
            if spans:
                span = draw(st.sampled_from(spans))
                data = data[: span.start()] + draw(st.sampled_from(NUMBERS)) + data[span.end() :]
        elif op == "bomb":
            levels = draw(st.integers(2, 9))
            data = bomb_lines(levels) + data.replace(b": ", f": *z{levels - 1} #".encode(), 1)
    return data


FUZZ_EXAMPLES = 2500
"""Mutants tried per file; the fuzz test's count in the issue's closing note is twice this."""


@pytest.fixture(scope="module")
def fuzz_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("fuzz"))


def check_mutant(root: Path, name: str, data: bytes) -> bool:
    """Load the project with `name` replaced by `data`: True when it loaded, False for the one-line error."""
    path = root / name
    path.write_bytes(data)
    try:
        config = load_config(root)
    except ConfigError as exc:
        assert_one_line_error(exc, path, data)
        return False
    # What `mlci config --json` prints: every number must be finite (json refuses NaN and inf here).
    printed = config.as_dict()
    if config.gates is not None:
        printed["gate_spec"] = config.gates.as_dict()
    json.dumps(printed, allow_nan=False, default=str)
    return True


@pytest.mark.parametrize("name", FILES)
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_fuzzed_config_and_gate_files_load_or_give_one_line(fuzz_project: Path, name: str, data: st.DataObject) -> None:
    original = (SAMPLE / name).read_bytes()
    try:
        check_mutant(fuzz_project, name, data.draw(mutants(original)))
    finally:
        shutil.copyfile(SAMPLE / name, fuzz_project / name)


TOML_SAMPLE = b"""[project]
name = "credit"

[tool.mlci.mlflow]
experiment = "credit"
model_name = "credit-default"

[tool.mlci.tiers.code]
triggers = ["src/**/*.py", "tests/unit/**"]
timeout = 300

[tool.mlci.tiers.data]
timeout = 1800.5
"""
"""The sample's mlci.yaml as a `[tool.mlci]` table, for the TOML reader's fuzz test."""


@settings(
    max_examples=FUZZ_EXAMPLES // 2,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_fuzzed_tool_mlci_tables_load_or_give_one_line(fuzz_project: Path, data: st.DataObject) -> None:
    (fuzz_project / "mlci.yaml").unlink(missing_ok=True)  # so that [tool.mlci] is what is read
    try:
        check_mutant(fuzz_project, "pyproject.toml", data.draw(mutants(TOML_SAMPLE)))
    finally:
        (fuzz_project / "pyproject.toml").unlink(missing_ok=True)
        shutil.copyfile(SAMPLE / "mlci.yaml", fuzz_project / "mlci.yaml")


def test_fuzzed_files_through_the_real_cli(tmp_path: Path) -> None:
    """A dozen mutants, drawn with a fixed seed, through `mlci config`: exit 0, or exit 2 with one line."""
    rng = random.Random(11)
    make_project(tmp_path)
    outcomes = []
    for index in range(12):
        name = FILES[index % 2]
        original = (SAMPLE / name).read_bytes()
        data = bytearray(original)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(data))
            if rng.random() < 0.5:
                data[at] = rng.randrange(256)
            else:
                data[at:at] = rng.choice(TOKENS + NUMBERS)
        (tmp_path / name).write_bytes(bytes(data))
        result = mlci("config", cwd=tmp_path)
        if result.returncode == 0:
            assert "Traceback" not in result.stderr
        else:
            assert_cli_one_line(result, name)
        outcomes.append(result.returncode)
        shutil.copyfile(SAMPLE / name, tmp_path / name)
    assert 2 in outcomes
