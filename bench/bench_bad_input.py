"""How fast bad config and gate files are refused: the slowest input, and how many were tried.

Loads a copy of the sample project's layout with `load_config` after replacing `mlci.yaml`
or `model_gates.yaml` by:

- the named worst cases: YAML alias bombs of 7, 9 and 12 levels (9**12 values expanded),
  an alias naming its own value, 5000-digit and 400-hex-digit integers, `.nan`/`.inf`
  timeouts, 10 000-deep nesting, a 1 MiB file, a file exactly at the value budget, bytes
  that are not UTF-8, and a broken `[tool.mlci]` table;
- `--mutants` random mutants of each file (byte flips, truncations, insertions of YAML
  tokens and aliases, number swaps), from a fixed seed.

Prints the count, how many loaded and how many were refused (one `file:line` line each),
the median and slowest times with the slowest input named, the peak memory of the process,
and, as a peer, PyYAML's own `safe_load` of the unmodified sample file. Figures only.

    python bench/bench_bad_input.py [--mutants 5000]
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from mlci.engine.config.loader import load_config
from mlci.engine.config.yaml_nodes import MAX_VALUES
from mlci.engine.errors import ConfigError

SAMPLE = Path(__file__).resolve().parents[1] / "sample_project"
FILES = ("mlci.yaml", "model_gates.yaml")
TOKENS = (b"&a ", b"*a", b"[*a, *a, *a]", b"\xff", b"\x00", b"\t", b": ", b"- ", b"{", b"[", b"'", b'"', b"\n")
NUMBERS = (b".nan", b".inf", b"-.inf", b"1.0e+400", b"9" * 5000, b"0x" + b"f" * 400, b"-1", b"0", b"2001-02-30")
_NUMBER = re.compile(rb"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def bomb(levels: int) -> bytes:
    lines = [b'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [".encode() + b", ".join([f"*l{level - 1}".encode()] * 9) + b"]")
    return b"\n".join(lines) + f"\nperformance: *l{levels - 1}\n".encode()


def named_cases() -> list[tuple[str, str, bytes]]:
    at_budget = b"tiers:\n  code:\n    pytest_args: [" + b", ".join([b"-q"] * (MAX_VALUES - 20)) + b"]\n"
    return [
        ("alias bomb, 7 levels", "model_gates.yaml", bomb(7)),
        ("alias bomb, 9 levels", "model_gates.yaml", bomb(9)),
        ("alias bomb, 12 levels", "mlci.yaml", bomb(12)),
        ("recursive alias", "mlci.yaml", b"tiers: &t\n  code: [*t]\n"),
        ("5000-digit integer", "mlci.yaml", b"tiers:\n  code:\n    timeout: " + b"9" * 5000 + b"\n"),
        ("400-hex-digit integer", "model_gates.yaml", b"size: {max_mb: 0x" + b"f" * 400 + b"}\n"),
        ("NaN timeout", "mlci.yaml", b"tiers:\n  code:\n    timeout: .nan\n"),
        ("infinite timeout", "mlci.yaml", b"tiers:\n  code:\n    timeout: .inf\n"),
        ("10000-deep nesting", "mlci.yaml", b"git: " + b"[" * 10_000 + b"]" * 10_000 + b"\n"),
        ("1 MiB file", "mlci.yaml", b"# " + b"x" * (1 << 20) + b"\n"),
        (f"{MAX_VALUES - 20} values (within budget)", "mlci.yaml", at_budget),
        ("not UTF-8", "model_gates.yaml", b"size: {max_mb: 50}\nfairness: \xff\n"),
        ("broken [tool.mlci]", "pyproject.toml", b"[tool.mlci]\ntiers = {code = {timeout = nan}\n"),
    ]


def mutate(rng: random.Random, data: bytes) -> bytes:
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(("flip", "truncate", "insert", "number"))
        at = rng.randrange(len(data) + 1)
        if op == "flip" and at < len(data):
            data = data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
        elif op == "truncate":
            data = data[:at]
        elif op == "insert":
            data = data[:at] + rng.choice(TOKENS) + data[at:]
        else:
            spans = list(_NUMBER.finditer(data))
            if spans:
                span = rng.choice(spans)
                data = data[: span.start()] + rng.choice(NUMBERS) + data[span.end() :]
    return data


def try_one(root: Path, name: str, data: bytes) -> tuple[float, bool]:
    """Seconds to load (or refuse) the project with `name` holding `data`; True when it loaded."""
    path = root / name
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        load_config(root)
        loaded = True
    except ConfigError as exc:
        assert "\n" not in str(exc), str(exc)
        loaded = False
    elapsed = time.perf_counter() - start
    if name == "pyproject.toml":
        path.unlink()
    else:
        shutil.copyfile(SAMPLE / name, path)
    return elapsed, loaded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=int, default=5000, help="random mutants per file (default 5000)")
    args = parser.parse_args()
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="mlci-bench-bad-input-") as tmp:
        root = Path(tmp)
        for folder in ("tests/unit", "tests/data", "tests/model"):
            (root / folder).mkdir(parents=True)
        for name in (*FILES, "dvc.yaml"):
            shutil.copyfile(SAMPLE / name, root / name)

        results: list[tuple[float, bool, str]] = []
        for label, name, data in named_cases():
            if name == "pyproject.toml":
                (root / "mlci.yaml").unlink()
            elapsed, loaded = try_one(root, name, data)
            if name == "pyproject.toml":
                shutil.copyfile(SAMPLE / "mlci.yaml", root / "mlci.yaml")
            results.append((elapsed, loaded, label))
            print(f"  {label:<34} {elapsed * 1000:8.1f} ms  {'loaded' if loaded else 'refused'}", flush=True)
        for name in FILES:
            original = (SAMPLE / name).read_bytes()
            for index in range(args.mutants):
                elapsed, loaded = try_one(root, name, mutate(rng, original))
                results.append((elapsed, loaded, f"{name} mutant #{index}"))

        peer_text = (SAMPLE / "model_gates.yaml").read_text(encoding="utf-8")
        peer = statistics.median(_timed(lambda: yaml.safe_load(peer_text)) for _ in range(200))

    times = [r[0] for r in results]
    slowest = max(results)
    refused = sum(1 for r in results if not r[1])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"inputs tried:      {len(results)} ({len(results) - refused} loaded, {refused} refused with one line)")
    print(f"median:            {statistics.median(times) * 1000:.2f} ms")
    print(f"slowest:           {slowest[0] * 1000:.1f} ms ({slowest[2]})")
    print(f"peak memory (RSS): {peak_mb:.0f} MB for the whole process")
    print(f"peer: yaml.safe_load of the sample model_gates.yaml: {peer * 1000:.2f} ms")
    return 0


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
